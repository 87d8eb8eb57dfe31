import Foundation

/// The coordinator's progress line every `every` steps: step/epoch, both losses (mean over the interval),
/// LR, λ, images per second and ETA.
struct StepMeter {
    let every: Int
    let totalSteps: Int
    let imagesPerStep: Int
    private var start = ContinuousClock.now
    private var steps = 0
    private var globalSum = 0.0
    private var denseSum = 0.0

    init(every: Int, totalSteps: Int, imagesPerStep: Int) {
        self.every = max(1, every)
        self.totalSteps = totalSteps
        self.imagesPerStep = imagesPerStep
    }

    mutating func record(
        step: Int, epoch: Int, globalLoss: Double, denseLoss: Double, learningRate: Double, lambda: Double
    ) -> String? {
        steps += 1
        globalSum += globalLoss
        denseSum += denseLoss
        let done = step + 1
        guard done % every == 0 || done == totalSteps else { return nil }
        let now = ContinuousClock.now
        let perStep = Coordinator.seconds(now - start) / Double(steps)
        let eta = Int((perStep * Double(totalSteps - done)).rounded())
        let line = String(
            format: "step %d/%d epoch %d  loss_single %.4f  loss_dense %.4f  lr %.5f  lambda %.2f  %.1f img/s  eta %d:%02d:%02d",
            done, totalSteps, epoch, globalSum / Double(steps), denseSum / Double(steps), learningRate, lambda,
            Double(imagesPerStep) / max(perStep, 1e-9), eta / 3600, eta / 60 % 60, eta % 60)
        start = now
        steps = 0
        globalSum = 0
        denseSum = 0
        return line
    }
}
