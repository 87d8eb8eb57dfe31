/// Module anchor for DenseCLComm; see docs/architecture.md for what lives here.
enum DenseCLCommModule {}
