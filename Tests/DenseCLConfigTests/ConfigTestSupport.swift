import DenseCLConfig

/// The error thrown by `body`, or `nil` when it succeeds.
func configError(_ body: () throws(ConfigError) -> Void) -> ConfigError? {
    do {
        try body()
        return nil
    } catch {
        return error
    }
}

/// The error of parsing `yaml` with `overrides`, or `nil` when it parses.
func parseError(_ yaml: String, _ overrides: [String] = []) -> ConfigError? {
    configError { () throws(ConfigError) in _ = try DenseCLConfig.parse(yaml: yaml, overrides: overrides) }
}

/// The smallest valid document: everything default except the dataset location, which has no default.
let minimalYAML = "data:\n  root: data/imagenet\n"
