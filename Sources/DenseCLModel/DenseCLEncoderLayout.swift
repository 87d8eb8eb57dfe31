/// The tensors of one DenseCL encoder, the official `nn.Sequential(backbone, neck)`: the ResNet under `0.` and the
/// neck under `1.`, so a slot's name is its official state-dict name without the `encoder_q.` / `encoder_k.`
/// prefix (`0.layer1.0.conv1.weight`, `1.mlp.0.weight`, ...).
///
/// The query encoder, the key encoder, the gradients and the SGD momentum all use this one parameter layout, so
/// the momentum-encoder EMA, SGD and the gradient all-reduce are single loops over flat buffers.
public struct DenseCLEncoderLayout: Sendable, Equatable {
    public static let backbonePrefix = "0."
    public static let neckPrefix = "1."

    public let architecture: ResNetArchitecture
    public let topology: ResNetTopology
    public let neck: DenseCLNeckSlots
    /// Backbone then neck parameters, in the official `named_parameters()` order.
    public let parameters: ArenaLayout
    /// The backbone's BatchNorm buffers (the neck has none).
    public let state: ArenaLayout

    /// - Parameters:
    ///   - hidden: the neck's hidden width (`model.hid_dim`).
    ///   - dim: D, the embedding width (`model.feat_dim`).
    public init(architecture: ResNetArchitecture, hidden: Int, dim: Int) {
        self.init(configuration: architecture.configuration, architecture: architecture, hidden: hidden, dim: dim)
    }

    /// A layout over a non-standard backbone configuration (narrow test networks); `architecture` names its family.
    public init(configuration: ResNetConfiguration, architecture: ResNetArchitecture, hidden: Int, dim: Int) {
        self.architecture = architecture
        topology = ResNetTopology(configuration)
        var parameters = ArenaLayout(), state = ArenaLayout()
        _ = topology.declare(parameters: &parameters, state: &state, prefix: Self.backbonePrefix)
        neck = DenseCLNeckSlots.declare(
            into: &parameters, prefix: Self.neckPrefix, channels: configuration.outputChannels, hidden: hidden, dim: dim)
        self.parameters = parameters
        self.state = state
    }

    /// The official initialisation of an encoder: the backbone as OpenSelfSup's ResNet (Kaiming-normal fan_in
    /// convolutions, BatchNorm 1/0, running statistics reset) and the neck as `DenseCLNeck.init_weights`.
    public func initialize(parameters: Arena, state: Arena, seed: UInt64) {
        precondition(parameters.layout == self.parameters && state.layout == self.state, "arenas of another layout")
        topology.initialize(parameters: parameters, state: state, prefix: Self.backbonePrefix, seed: seed)
        neck.initialize(parameters, seed: seed)
    }
}
