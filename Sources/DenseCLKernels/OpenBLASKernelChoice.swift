import COpenBLAS
import Foundation

/// Which of OpenBLAS's kernel sets a process should run with, and the relaunch that applies it.
///
/// OpenBLAS builds with every kernel set (`DYNAMIC_ARCH`, as distributions ship it) pick one per CPU when the library
/// loads, and the pick can be wrong for a CPU newer than the library: OpenBLAS 0.3.21 gives AMD Zen 4 (family 19h
/// with AVX-512) its Cooperlake kernels, written for Intel's full-width AVX-512 units, while Zen 4 runs AVX-512 on
/// 256-bit units and its Haswell (AVX2) kernels are faster: measured 6-8 % on a whole two-lane training step and
/// 7-12 % on a one-thread step (docs/performance.md). The library reads `OPENBLAS_CORETYPE` only while it loads,
/// so the choice takes a fresh process image: ``relaunchWithPreferredKernels()``.
///
/// The same relaunch sets ``threadTimeout``. The user's own `OPENBLAS_CORETYPE` and `OPENBLAS_THREAD_TIMEOUT` always
/// win; `DENSECL_KEEP_BLAS_KERNELS=1` keeps OpenBLAS's defaults.
public enum OpenBLASKernelChoice {
    /// The kernel set to ask for (`OPENBLAS_CORETYPE`), or nil to keep OpenBLAS's own pick.
    /// - Parameters:
    ///   - vendor: `/proc/cpuinfo`'s `vendor_id`; `family`: its `cpu family`; `avx512`: whether `flags` has avx512f.
    ///   - openBLASPick: `openblas_get_corename()` of the loaded library.
    public static func preferredCoreType(vendor: String, family: Int, avx512: Bool, openBLASPick: String) -> String? {
        let zen4 = vendor == "AuthenticAMD" && family == 0x19 && avx512
        let wideAVX512Kernels = ["cooperlake", "skylakex", "sapphirerapids"].contains(openBLASPick.lowercased())
        return zen4 && wideAVX512Kernels ? "Haswell" : nil
    }

    /// The kernel set OpenBLAS picked for this process.
    public static var currentCoreType: String { String(cString: openblas_get_corename()) }

    /// ``preferredCoreType(vendor:family:avx512:openBLASPick:)`` for this machine (nil when `/proc/cpuinfo` cannot be
    /// read).
    public static func preferredCoreTypeHere() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            if line.isEmpty { break }  // the first processor's block is enough
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            fields[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        guard let vendor = fields["vendor_id"], let family = fields["cpu family"].flatMap({ Int($0) }) else { return nil }
        let avx512 = (fields["flags"] ?? "").split(separator: " ").contains("avx512f")
        return preferredCoreType(vendor: vendor, family: family, avx512: avx512, openBLASPick: currentCoreType)
    }

    /// How long OpenBLAS's own threads spin for more work after a multi-threaded call, as `OPENBLAS_THREAD_TIMEOUT`
    /// (2^n cycles; OpenBLAS's default 28 is ~0.1 s). With two lanes almost every GEMM runs on one thread, and the
    /// few two-thread calls (the neck, the stem's weight gradient) leave a thread spinning beside the lanes; at 4
    /// (OpenBLAS's minimum) it sleeps at once. Measured: ResNet-18 MoCo-v2 step median 61.2 → 64.0 img/s, CPU per
    /// step 1005 → 950 ms (six alternating runs each).
    public static let threadTimeout = "4"

    /// The variables a relaunch should add to `environment` (empty when nothing is missing): the kernel set of
    /// ``preferredCoreTypeHere()`` and ``threadTimeout``, each unless the user set it; nothing at all under
    /// `DENSECL_KEEP_BLAS_KERNELS`.
    public static func missingVariables(in environment: [String: String], preferredCoreType: String?) -> [String: String] {
        guard environment["DENSECL_KEEP_BLAS_KERNELS"] == nil else { return [:] }
        var missing: [String: String] = [:]
        if environment["OPENBLAS_CORETYPE"] == nil, let preferredCoreType { missing["OPENBLAS_CORETYPE"] = preferredCoreType }
        if environment["OPENBLAS_THREAD_TIMEOUT"] == nil { missing["OPENBLAS_THREAD_TIMEOUT"] = threadTimeout }
        return missing
    }

    /// Replaces this process with a fresh copy of itself (same arguments and environment, plus the variables of
    /// ``missingVariables(in:preferredCoreType:)``) when OpenBLAS should have been loaded with other settings;
    /// returns when nothing is missing, or when the relaunch fails (the process then goes on with OpenBLAS's
    /// defaults).
    ///
    /// For executables only, as the first thing their `main` does (before threads or files are opened).
    public static func relaunchWithPreferredKernels() {
        let environment = ProcessInfo.processInfo.environment
        let missing = missingVariables(
            in: environment, preferredCoreType: environment["OPENBLAS_CORETYPE"] == nil ? preferredCoreTypeHere() : nil)
        guard !missing.isEmpty else { return }
        for (name, value) in missing { setenv(name, value, 1) }
        let arguments = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // Only reached when execv failed: go on as we are, without the variables (children would inherit them).
        for name in missing.keys { unsetenv(name) }
        for pointer in argv { free(pointer) }
    }
}
