/// Module anchor for DenseCLKernels; see docs/architecture.md for what lives here.
enum DenseCLKernelsModule {}
