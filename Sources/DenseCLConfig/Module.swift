/// Module anchor for DenseCLConfig; see docs/architecture.md for what lives here.
enum DenseCLConfigModule {}
