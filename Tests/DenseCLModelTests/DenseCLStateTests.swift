import DenseCLKernels
import DenseCLModel
import DenseCLTestSupport
import SafeTensors
import XCTest

/// The official initialisation and the state-dict round trip with its errors.
final class DenseCLStateTests: XCTestCase {
    /// Neck init (DenseCLNeck.init_weights): Linear layers N(0, 2/in) with zero bias, 1x1 convolutions PyTorch's
    /// default U(±1/√in) for weight and bias. With 131,072 and 65,536 draws the sample std is within 1 % (≈ 4 σ of
    /// its spread), and a uniform's largest draw is within 0.1 % of the bound.
    func testNeckInitialisationIsTheOfficialOne() {
        var layout = ArenaLayout()
        let slots = DenseCLNeckSlots.declare(into: &layout, prefix: "", channels: 512, hidden: 256, dim: 128)
        let parameters = Arena(layout: layout)
        slots.initialize(parameters, seed: 1)
        func std(_ slot: TensorSlot) -> Double {
            let v = parameters.values(slot).map(Double.init), mean = v.reduce(0, +) / Double(v.count)
            return (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count)).squareRoot()
        }
        XCTAssertEqual(std(slots.globalHiddenWeight), (2.0 / 512).squareRoot(), accuracy: 0.01 * (2.0 / 512).squareRoot())
        XCTAssertEqual(std(slots.globalOutputWeight), (2.0 / 256).squareRoot(), accuracy: 0.01 * (2.0 / 256).squareRoot())
        XCTAssertEqual(Set(parameters.values(slots.globalHiddenBias)), [0])
        XCTAssertEqual(Set(parameters.values(slots.globalOutputBias)), [0])
        for (weight, bias, inputs) in [(slots.denseHiddenWeight, slots.denseHiddenBias, 512), (slots.denseOutputWeight, slots.denseOutputBias, 256)] {
            let bound = Float(1 / Double(inputs).squareRoot())
            let w = parameters.values(weight), b = parameters.values(bias)
            XCTAssertLessThanOrEqual(w.map(abs).max()!, bound)
            XCTAssertGreaterThan(w.map(abs).max()!, 0.999 * bound)
            XCTAssertLessThanOrEqual(b.map(abs).max()!, bound)
            XCTAssertGreaterThan(Set(b).count, b.count / 2, "dense-head biases are random, not zero")
        }
    }

    func testKeyEncoderStartsAsACopyOfTheQueryEncoder() {
        let state = TinyDenseCL.state(queueLength: 8)
        XCTAssertEqual(Array(state.keyParameters.buffer), Array(state.queryParameters.buffer))
        XCTAssertEqual(Array(state.keyState.buffer), Array(state.queryState.buffer))
        XCTAssertEqual(Set(state.velocity.buffer), [0])
        XCTAssertNotEqual(Array(state.queue.values), Array(state.denseQueue.values))
    }

    private func exported(_ state: DenseCLState, dropping dropped: Set<String> = [], adding: (inout SafeTensorsWriter) -> Void = { _ in }) throws -> SafeTensorsFile {
        var writer = SafeTensorsWriter()
        state.export(to: &writer)
        let file = try SafeTensorsFile(data: writer.serialized())
        var filtered = SafeTensorsWriter()
        for info in file.tensors where !dropped.contains(info.name) {
            if info.dtype == .i64 {
                filtered.add(info.name, int64s: try file.int64s(info.name), shape: info.shape)
            } else {
                filtered.add(info.name, floats: try file.floats(info.name), shape: info.shape)
            }
        }
        adding(&filtered)
        return try SafeTensorsFile(data: filtered.serialized())
    }

    func testExportThenLoadRestoresEverything() throws {
        let step = try TinyDenseCL.step()
        _ = try step.run(step: 0, seed: 1, learningRate: 0.1, lambda: 0.5)  // non-trivial velocity, stats, pointers
        let original = step.state
        let restored = DenseCLState(layout: original.layout, queueLength: 8)
        try restored.load(from: try exported(original))
        for (a, b) in [(original.queryParameters, restored.queryParameters), (original.keyParameters, restored.keyParameters),
                       (original.queryState, restored.queryState), (original.keyState, restored.keyState),
                       (original.velocity, restored.velocity)] {
            XCTAssertEqual(Array(a.buffer), Array(b.buffer))
        }
        XCTAssertEqual(Array(restored.queue.values), Array(original.queue.values))
        XCTAssertEqual(Array(restored.denseQueue.values), Array(original.denseQueue.values))
        XCTAssertEqual([restored.queue.pointer, restored.denseQueue.pointer], [4, 4])
    }

    func testOptionalTensorsDefaultToZero() throws {
        let state = TinyDenseCL.state(queueLength: 8)
        let optional = state.velocity.layout.slots.map { DenseCLState.velocityPrefix + $0.name }
            + state.queryState.layout.slots.filter { $0.element == .int64 }.map { DenseCLState.queryPrefix + $0.name }
        let restored = DenseCLState(layout: state.layout, queueLength: 8)
        for slot in restored.velocity.layout.slots { restored.velocity.values(slot).update(repeating: 1) }
        for slot in restored.queryState.layout.slots { restored.queryState.values(slot).update(repeating: 1) }
        try restored.load(from: try exported(state, dropping: Set(optional)))
        XCTAssertEqual(Set(restored.velocity.buffer), [0])
        for slot in restored.queryState.layout.slots where slot.element == .int64 {
            XCTAssertEqual(Array(restored.queryState.values(slot)), [0], slot.name)
        }
    }

    func testLoadErrorsNameTheTensor() throws {
        let state = TinyDenseCL.state(queueLength: 8)
        func error(_ file: SafeTensorsFile) -> DenseCLError? {
            do { try DenseCLState(layout: state.layout, queueLength: 8).load(from: file); return nil } catch { return error }
        }
        XCTAssertEqual(error(try exported(state, dropping: ["encoder_k.1.mlp2.2.bias"])), .stateDict(.missingTensor("encoder_k.1.mlp2.2.bias")))
        XCTAssertEqual(error(try exported(state, dropping: ["queue2_ptr"])), .stateDict(.missingTensor("queue2_ptr")))
        XCTAssertEqual(
            error(try exported(state) { $0.add("encoder_q.1.mlp.9.weight", floats: [0], shape: [1]) }),
            .stateDict(.unexpectedTensor("encoder_q.1.mlp.9.weight")))
        XCTAssertEqual(
            error(try exported(state, dropping: ["queue_ptr"]) { $0.add("queue_ptr", int64s: [8], shape: [1]) }),
            .invalidQueuePointer(name: "queue_ptr", value: 8, queueLength: 8))
        XCTAssertEqual(
            error(try exported(state, dropping: ["queue"]) { $0.add("queue", floats: [Float](repeating: 0, count: 28), shape: [4, 7]) }),
            .stateDict(.wrongShape(name: "queue", expected: [4, 8], found: [4, 7])))
    }
}
