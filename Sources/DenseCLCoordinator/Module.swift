/// Module anchor for DenseCLCoordinator; see docs/architecture.md for what lives here.
enum DenseCLCoordinatorModule {}
