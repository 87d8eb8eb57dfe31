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
