import Foundation

/// The losses and schedule values of one step as a run reports them (the official log's names).
public struct StepRecord: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    /// `loss_contra_single` = (1 − λ)·L_global.
    public var globalLoss: Double
    /// `loss_contra_dense` = λ·L_dense.
    public var denseLoss: Double
    public var learningRate: Double
    public var lambda: Double

    public init(step: Int, epoch: Int, globalLoss: Double, denseLoss: Double, learningRate: Double, lambda: Double) {
        self.step = step
        self.epoch = epoch
        self.globalLoss = globalLoss
        self.denseLoss = denseLoss
        self.learningRate = learningRate
        self.lambda = lambda
    }

    public var totalLoss: Double { globalLoss + denseLoss }
}

/// Turns step records into one progress line per `every` steps: step/epoch, both losses (mean over the
/// interval), LR, λ, images per second, the share of the time spent waiting for data, and the ETA.
public struct ProgressMeter: Sendable {
    public let every: Int
    public let totalSteps: Int
    public let imagesPerStep: Int
    private var intervalStart: ContinuousClock.Instant
    private var steps = 0
    private var globalSum = 0.0
    private var denseSum = 0.0
    private var dataWait: Duration = .zero

    public init(every: Int, totalSteps: Int, imagesPerStep: Int, now: ContinuousClock.Instant = .now) {
        self.every = max(1, every)
        self.totalSteps = totalSteps
        self.imagesPerStep = imagesPerStep
        intervalStart = now
    }

    /// Adds a finished step; returns the progress line when the step closes an interval (or is the last).
    public mutating func record(
        _ record: StepRecord, dataWait wait: Duration, now: ContinuousClock.Instant = .now
    ) -> String? {
        steps += 1
        globalSum += record.globalLoss
        denseSum += record.denseLoss
        dataWait += wait
        let done = record.step + 1
        guard done % every == 0 || done == totalSteps else { return nil }
        let elapsed = Self.seconds(now - intervalStart)
        let perStep = elapsed / Double(steps)
        let line = String(
            format: "step %d/%d epoch %d  loss_single %.4f  loss_dense %.4f  lr %.5f  lambda %.2f  %.1f img/s  data-wait %.0f%%  eta %@",
            done, totalSteps, record.epoch, globalSum / Double(steps), denseSum / Double(steps), record.learningRate,
            record.lambda, Double(imagesPerStep) / max(perStep, 1e-9),
            100 * Self.seconds(dataWait) / max(elapsed, 1e-9), Self.clock(perStep * Double(totalSteps - done)))
        intervalStart = now
        steps = 0
        globalSum = 0
        denseSum = 0
        dataWait = .zero
        return line
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// `h:mm:ss`.
    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}
