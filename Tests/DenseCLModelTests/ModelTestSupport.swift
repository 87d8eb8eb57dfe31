import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import Foundation
import SafeTensors

/// A standalone backbone: its arenas and the model built over them.
struct Backbone {
    let topology: ResNetTopology
    let parameters: Arena
    let state: Arena
    let gradients: Arena?
    let model: ResNet

    init(
        _ configuration: ResNetConfiguration, batch: Int, height: Int, width: Int, trainable: Bool = true,
        threads: Int = 1
    ) throws {
        topology = ResNetTopology(configuration)
        let layouts = topology.layouts()
        parameters = Arena(layout: layouts.parameters)
        state = Arena(layout: layouts.state)
        gradients = trainable ? Arena(layout: layouts.parameters) : nil
        model = try ResNet(
            topology: topology, batch: batch, height: height, width: width, parameters: parameters, state: state,
            gradients: gradients, context: try ComputeContext(threads: threads))
    }

    /// A tensor of `arena` in PyTorch's layout.
    static func pytorchValues(_ arena: Arena, _ slot: TensorSlot) -> [Float] {
        var values = [Float](repeating: 0, count: slot.count)
        values.withUnsafeMutableBufferPointer { slot.loadAsPyTorch(from: arena.pointer(slot), into: $0) }
        return values
    }

    /// Runs backward from a PyTorch-layout C5 gradient; returns the input gradient in PyTorch's layout.
    func backward(dOutputNCHW: [Float]) -> [Float] {
        let dY = dOutputNCHW.withUnsafeBufferPointer { model.outputGradientNHWC(fromNCHW: $0) }
        var dX = [Float](repeating: 0, count: model.input.count)
        dY.withUnsafeBufferPointer { y in
            dX.withUnsafeMutableBufferPointer { model.backward(dOutput: y.baseAddress!, dInput: $0.baseAddress!) }
        }
        return dX.withUnsafeBufferPointer { model.inputShapedNCHW(fromNHWC: $0) }
    }
}

/// A whole-backbone PyTorch fixture (scripts/reference/make_resnet_fixtures.py) and the inputs its recipe makes.
struct BackboneFixture {
    let file: SafeTensorsFile
    let inputs: [String: ReferenceRecipe.Tensor]
    let architecture: ResNetArchitecture
    let train: Bool
    let groups: Int
    /// `num_batches_tracked` of every BatchNorm before the pass.
    let batchesTracked: Int64

    init(_ name: String) throws {
        file = try Fixtures.load("resnet/\(name).safetensors")
        inputs = try ReferenceRecipe.inputs(of: file)
        architecture = try ResNetArchitecture(parsing: file.metadata["arch"] ?? "")
        train = file.metadata["train"] == "true"
        guard let groups = Int(file.metadata["bn_groups"] ?? ""),
            let tracked = Int64(file.metadata["num_batches_tracked"] ?? "")
        else { throw ReferenceRecipe.RecipeError.missing("bn_groups / num_batches_tracked metadata") }
        self.groups = groups
        batchesTracked = tracked
    }

    func tensor(_ name: String) throws -> ReferenceRecipe.Tensor {
        guard let t = inputs[name] else { throw ReferenceRecipe.RecipeError.missing("recipe tensor '\(name)'") }
        return t
    }

    /// The torchvision-named state the fixture was computed with, as a safetensors file would hold it.
    func weights() throws -> SafeTensorsWriter {
        let layouts = ResNetTopology(architecture.configuration).layouts()
        var writer = SafeTensorsWriter()
        for slot in layouts.parameters.slots + layouts.state.slots {
            if slot.element == .int64 {
                writer.add(slot.name, int64s: [batchesTracked], shape: [])
            } else {
                let t = try tensor(slot.name)
                writer.add(slot.name, floats: t.values, shape: t.shape)
            }
        }
        return writer
    }
}
