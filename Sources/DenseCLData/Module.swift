/// Module anchor for DenseCLData; see docs/architecture.md for what lives here.
enum DenseCLDataModule {}
