/// Module anchor for DenseCLRuntime; see docs/architecture.md for what lives here.
enum DenseCLRuntimeModule {}
