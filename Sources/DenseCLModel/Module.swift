/// Module anchor for DenseCLModel; see docs/architecture.md for what lives here.
enum DenseCLModelModule {}
