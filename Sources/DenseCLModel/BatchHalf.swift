import DenseCLKernels

/// One half of a batch as the backward pass cuts it: images `firstImage..<firstImage + images`, with the kernel
/// shapes of those images alone. Activations are channels-last, so a half of any tensor is one contiguous run
/// of its elements.
///
/// A batch of `N ≥ 2` images has two halves, the first `N / 2` images and the rest; a single image is one half.
/// The cut depends only on `N`, never on the thread count, so that every budget computes the same sums.
struct BatchHalf {
    let firstImage: Int
    let images: Int
    /// Every unit's convolution over this half's images (indexed like `ResNetProgram.convolutions`).
    let convolutions: [Conv2dShape]
    let pool: MaxPool2dShape
    /// Images in the whole batch.
    let batch: Int

    /// The halves of `program`'s batch of `batch` images.
    static func halves(of program: ResNetProgram, batch: Int) throws(KernelError) -> [BatchHalf] {
        let cuts = batch >= 2 ? [0, batch / 2, batch] : [0, batch]
        var halves: [BatchHalf] = []
        for i in 0..<(cuts.count - 1) {
            let images = cuts[i + 1] - cuts[i]
            var convolutions: [Conv2dShape] = []
            for shape in program.convolutions { convolutions.append(try shape.resized(batch: images)) }
            halves.append(
                BatchHalf(
                    firstImage: cuts[i], images: images, convolutions: convolutions,
                    pool: try program.pool.resized(batch: images), batch: batch))
        }
        return halves
    }

    /// Where this half starts in tensor `t` of `program` (elements).
    func offset(of t: Int, in program: ResNetProgram) -> Int {
        program.tensorCounts[t] / batch * firstImage
    }

    /// This half's rows of a BatchNorm's `[N·H·W, C]` view.
    func rows(of shape: BatchNorm2dShape) -> Range<Int> {
        let perImage = shape.height * shape.width
        return (firstImage * perImage)..<((firstImage + images) * perImage)
    }
}
