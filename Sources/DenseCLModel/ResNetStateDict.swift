import SafeTensors

extension ResNetTopology {
    /// The slots of every unit, in `units` order, looked up by name in layouts the tensors were declared into with
    /// `declare(parameters:state:prefix:)`.
    public func slots(parameters: ArenaLayout, state: ArenaLayout, prefix: String = "") -> [ConvBNSlots] {
        units.map { unit in
            let conv = prefix + unit.convolutionName, bn = prefix + unit.normalizationName
            func find(_ layout: ArenaLayout, _ name: String) -> TensorSlot {
                guard let slot = layout.slot(name) else { preconditionFailure("tensor '\(name)' was not declared") }
                return slot
            }
            return ConvBNSlots(
                weight: find(parameters, "\(conv).weight"), gamma: find(parameters, "\(bn).weight"),
                beta: find(parameters, "\(bn).bias"), runningMean: find(state, "\(bn).running_mean"),
                runningVariance: find(state, "\(bn).running_var"),
                batchesTracked: find(state, "\(bn).num_batches_tracked"))
        }
    }

    /// Loads a torchvision-named backbone state (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`, ...).
    ///
    /// Only the file's entries that start with `filePrefix` are considered (a DenseCL bundle stores the backbone
    /// under `encoder_q.0.`); among them, `fc.*` (torchvision's classifier) is ignored. Any other missing, extra,
    /// mis-shaped or mistyped tensor is an error naming it. Nothing is written unless every name is accounted for;
    /// a shape or dtype error can leave the arenas partly written.
    ///
    /// - Parameters:
    ///   - filePrefix: the prefix of the backbone's names in the file.
    ///   - prefix: the prefix the tensors were declared with in the arenas.
    public func load(
        from file: SafeTensorsFile, filePrefix: String = "", parameters: Arena, state: Arena, prefix: String = ""
    ) throws(StateDictError) {
        func fileName(_ slot: TensorSlot) -> String { filePrefix + slot.name.dropFirst(prefix.count) }
        let all = slots(parameters: parameters.layout, state: state.layout, prefix: prefix)
        let known = Set(all.flatMap { ($0.parameterSlots + $0.stateSlots).map(fileName) })
        for info in file.tensors where info.name.hasPrefix(filePrefix) && !known.contains(info.name) {
            if info.name.dropFirst(filePrefix.count).hasPrefix("fc.") { continue }
            throw .unexpectedTensor(info.name)
        }
        for name in known.sorted() where file.info(name) == nil { throw .missingTensor(name) }
        for unit in all {
            try parameters.load(unit.parameterSlots, from: file, fileName: fileName)
            try state.load(unit.stateSlots, from: file, fileName: fileName)
        }
    }

    /// Adds the backbone's parameters and BatchNorm state to `writer` with torchvision's names and layouts, each
    /// name preceded by `filePrefix`, in torchvision's state-dict order.
    public func export(
        parameters: Arena, state: Arena, prefix: String = "", filePrefix: String = "",
        to writer: inout SafeTensorsWriter
    ) {
        func fileName(_ slot: TensorSlot) -> String { filePrefix + slot.name.dropFirst(prefix.count) }
        for unit in slots(parameters: parameters.layout, state: state.layout, prefix: prefix) {
            parameters.export(unit.parameterSlots, to: &writer, fileName: fileName)
            state.export(unit.stateSlots, to: &writer, fileName: fileName)
        }
    }
}
