import DenseCLKernels
import SafeTensors

/// Why a `densecl forward` request cannot be run.
public enum BackboneForwardError: Error, Equatable, CustomStringConvertible {
    case model(ModelError)
    case weights(StateDictError)
    /// The input file lacks a tensor, has one of the wrong shape or type, or has an unknown one.
    case inputFile(String)

    public var description: String {
        switch self {
        case .model(let error): error.description
        case .weights(let error): "weights: \(error)"
        case .inputFile(let what): "input file: \(what)"
        }
    }
}

/// The `densecl forward` contract: one forward (and optionally backward) pass of a torchvision-named backbone on a
/// PyTorch-layout batch, with every result in PyTorch's names and layouts.
///
/// - `weights`: a torchvision backbone state (`fc.*` ignored; anything else missing, extra or mis-shaped is an
///   error naming it).
/// - `inputs`: `input` `[N, 3, H, W]`, optionally `grad_output` of C5's shape `[N, C, h, w]`; nothing else.
/// - Result: `output` `[N, C, h, w]`; with `grad_output`, `grad.input` and `grad.<name>` for every parameter;
///   with `train` (BatchNorm on batch statistics), the updated BatchNorm state under its own names.
public enum BackboneForward {
    public static func run(
        architecture: ResNetArchitecture, weights: SafeTensorsFile, inputs: SafeTensorsFile, train: Bool,
        context: ComputeContext
    ) throws(BackboneForwardError) -> SafeTensorsWriter {
        for info in inputs.tensors where info.name != "input" && info.name != "grad_output" {
            throw .inputFile("unexpected tensor '\(info.name)' (expected 'input' and optionally 'grad_output')")
        }
        let topology = ResNetTopology(architecture.configuration)
        let channels = topology.configuration.inputChannels
        guard let inputInfo = inputs.info("input") else { throw .inputFile("tensor 'input' is missing") }
        let shape = inputInfo.shape
        guard shape.count == 4, shape[1] == channels, shape.allSatisfy({ $0 > 0 }) else {
            throw .inputFile("tensor 'input' has shape \(shape), expected [N, \(channels), H, W]")
        }
        let image = try floats(inputs, "input")
        let gradOutputInfo = inputs.info("grad_output")

        let layouts = topology.layouts()
        let parameters = Arena(layout: layouts.parameters), state = Arena(layout: layouts.state)
        let gradients = gradOutputInfo == nil ? nil : Arena(layout: layouts.parameters)
        do { try topology.load(from: weights, parameters: parameters, state: state) } catch { throw .weights(error) }
        let model: ResNet
        do {
            model = try ResNet(
                topology: topology, batch: shape[0], height: shape[2], width: shape[3], parameters: parameters,
                state: state, gradients: gradients, context: context)
        } catch {
            throw .model(error)
        }
        let outputShape = [model.batch, model.outputChannels, model.outputHeight, model.outputWidth]
        var gradOutput: [Float]?
        if let gradOutputInfo {
            guard gradOutputInfo.shape == outputShape else {
                throw .inputFile("tensor 'grad_output' has shape \(gradOutputInfo.shape), expected \(outputShape)")
            }
            gradOutput = try floats(inputs, "grad_output")
        }

        image.withUnsafeBufferPointer { model.setInput(nchw: $0) }
        do { try model.forward(mode: train ? .training : .inference) } catch { throw .model(error) }
        var writer = SafeTensorsWriter(metadata: ["arch": architecture.rawValue, "train": String(train)])
        writer.add("output", floats: model.outputNCHW(), shape: outputShape)

        if let gradOutput, let gradients {
            let dOutput = gradOutput.withUnsafeBufferPointer { model.outputGradientNHWC(fromNCHW: $0) }
            var dInput = [Float](repeating: 0, count: model.input.count)
            dOutput.withUnsafeBufferPointer { dY in
                dInput.withUnsafeMutableBufferPointer { model.backward(dOutput: dY.baseAddress!, dInput: $0.baseAddress!) }
            }
            writer.add("grad.input", floats: dInput.withUnsafeBufferPointer { model.inputShapedNCHW(fromNHWC: $0) }, shape: shape)
            gradients.export(gradients.layout.slots, to: &writer) { "grad.\($0.name)" }
        }
        if train {
            state.export(state.layout.slots, to: &writer) { $0.name }
        }
        return writer
    }

    private static func floats(_ file: SafeTensorsFile, _ name: String) throws(BackboneForwardError) -> [Float] {
        guard let info = file.info(name), info.dtype == .f32 else {
            throw .inputFile("tensor '\(name)' must be float32, found \(file.info(name)?.dtype.rawValue ?? "nothing")")
        }
        do { return try file.floats(name) } catch { throw .inputFile(error.description) }
    }
}
