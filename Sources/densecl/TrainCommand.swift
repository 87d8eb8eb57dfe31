import ArgumentParser
import DenseCLConfig
import DenseCLWorker
import Foundation

/// `densecl train`: the single-process trainer (world size 1; `model.bn_groups` emulates that many workers).
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train DenseCL in one process (world size 1, model.bn_groups BatchNorm groups with shuffle-BN).",
        discussion: """
            Logs one line every train.log_every_steps steps and writes checkpoints to RUN_DIR/checkpoints every \
            train.checkpoint_every_steps steps and at the end. --resume auto continues from the newest checkpoint \
            that verifies (a fresh start when there is none), --resume PATH from that file, --resume none starts over.
            """)

    @Option(help: "The YAML configuration.")
    var config: String
    @Option(name: .customLong("run-dir"), help: "Where checkpoints go.")
    var runDirectory = "runs/train"
    @Option(name: .customLong("set"), help: "Override a configuration key: section.key=value (repeatable).")
    var overrides: [String] = []
    @Option(help: "auto, none or a checkpoint path.")
    var resume = "auto"

    func run() throws {
        // Typed errors describe themselves; ArgumentParser prints them and exits with status 1.
        let configuration = try DenseCLConfig.load(path: config, overrides: ["cluster.workers=1"] + overrides)
        let trainer = try SingleProcessTrainer(
            config: configuration, runDirectory: URL(fileURLWithPath: runDirectory), resume: ResumeMode(resume),
            log: { line in FileHandle.standardOutput.write(Data((line + "\n").utf8)) })
        try trainer.run()
    }
}
