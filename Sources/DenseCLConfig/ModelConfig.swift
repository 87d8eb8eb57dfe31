/// The backbone of both encoders (torchvision names; "pytorch-style" ResNet v1.5, C5 output only).
public enum ResNetArch: String, Sendable, Codable, CaseIterable {
    case resnet18, resnet34, resnet50, resnet101

    /// Channels of the C5 feature map: 512 for the basic-block networks, 2048 for the bottleneck networks.
    public var c5Channels: Int {
        switch self {
        case .resnet18, .resnet34: return 512
        case .resnet50, .resnet101: return 2048
        }
    }
}

/// `model.*`: the encoders, the DenseCL neck, the two InfoNCE losses and the negative queues.
/// Defaults are the official DenseCL ImageNet recipe (`densecl_imagenet_200ep.py`).
public struct ModelConfig: Sendable, Equatable, Codable {
    /// `model.arch`: backbone depth.
    public var arch: ResNetArch = .resnet50
    /// `model.feat_dim`: D, the width of the projected (global and dense) embeddings and of both queues.
    public var featDim = 128
    /// `model.hid_dim`: hidden width of both neck MLPs. Default: the C5 width of `arch` (2048 for R50, 512 for R18).
    public var hidDim = 2048
    /// `model.grid`: S, the side of the dense grid; `nil` (YAML `null` or `native`) means the native C5 grid.
    public var grid: Int?
    /// `model.loss_lambda`: λ in loss = (1 − λ)·L_global + λ·L_dense. λ = 0 is MoCo-v2.
    public var lossLambda = 0.5
    /// `model.lambda_warmup_steps`: λ is 0 for steps below this (DenseCLWarmupHook's `start_iters`); 0 = off.
    public var lambdaWarmupSteps = 0
    /// `model.temperature`: T, dividing every logit of both losses.
    public var temperature = 0.2
    /// `model.encoder_momentum`: m in θ_k ← m·θ_k + (1 − m)·θ_q.
    public var encoderMomentum = 0.999
    /// `model.queue_len`: K, the number of negatives in each of the two queues.
    public var queueLen = 65536
    /// `model.bn_groups`: G, BatchNorm groups per worker (each worker's batch is split into G groups that
    /// normalise separately, emulating G GPUs of the official per-GPU BatchNorm).
    public var bnGroups = 1

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case arch
        case featDim = "feat_dim"
        case hidDim = "hid_dim"
        case grid
        case lossLambda = "loss_lambda"
        case lambdaWarmupSteps = "lambda_warmup_steps"
        case temperature
        case encoderMomentum = "encoder_momentum"
        case queueLen = "queue_len"
        case bnGroups = "bn_groups"
    }

    /// Side of the C5 map for a square `imageSize` input: the stem's 7x7/2 convolution and 3x3/2 max-pool, then
    /// one stride-2 3x3 convolution in each of layer2, layer3 and layer4 (224 → 112 → 56 → 28 → 14 → 7).
    public static func c5GridSize(imageSize: Int) -> Int {
        var side = (imageSize + 2 * 3 - 7) / 2 + 1  // conv1: kernel 7, stride 2, padding 3
        side = (side + 2 * 1 - 3) / 2 + 1  // max-pool: kernel 3, stride 2, padding 1
        for _ in 0..<3 { side = (side + 2 * 1 - 3) / 2 + 1 }  // layer2..4: kernel 3, stride 2, padding 1
        return side
    }
}

extension ModelConfig {
    init(reading r: SectionReader) throws(ConfigError) {
        let d = ModelConfig()
        arch = try r.choice(CodingKeys.arch, default: d.arch)
        featDim = try r.int(CodingKeys.featDim, default: d.featDim)
        hidDim = try r.optionalInt(CodingKeys.hidDim, default: nil) ?? arch.c5Channels
        grid = try r.optionalInt(CodingKeys.grid, default: d.grid, nullWords: ["native"])
        lossLambda = try r.double(CodingKeys.lossLambda, default: d.lossLambda)
        lambdaWarmupSteps = try r.int(CodingKeys.lambdaWarmupSteps, default: d.lambdaWarmupSteps)
        temperature = try r.double(CodingKeys.temperature, default: d.temperature)
        encoderMomentum = try r.double(CodingKeys.encoderMomentum, default: d.encoderMomentum)
        queueLen = try r.int(CodingKeys.queueLen, default: d.queueLen)
        bnGroups = try r.int(CodingKeys.bnGroups, default: d.bnGroups)
    }

    var renderedFields: [(CodingKeys, String)] {
        [
            (.arch, arch.rawValue), (.featDim, YAMLText.int(featDim)), (.hidDim, YAMLText.int(hidDim)),
            (.grid, YAMLText.optionalInt(grid)), (.lossLambda, YAMLText.double(lossLambda)),
            (.lambdaWarmupSteps, YAMLText.int(lambdaWarmupSteps)), (.temperature, YAMLText.double(temperature)),
            (.encoderMomentum, YAMLText.double(encoderMomentum)), (.queueLen, YAMLText.int(queueLen)),
            (.bnGroups, YAMLText.int(bnGroups)),
        ]
    }
}
