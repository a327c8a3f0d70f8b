// `diffuse sample --scheduler-option KEY=VALUE`: config keys overridden as diffusers'
// `Scheduler.from_config(config, **kwargs)` does. Keys of the folder's scheduler config are set in
// it and read back through its decoder (so a wrong value is refused as a wrong file value would be);
// DPM-Solver's own keys set its options; a key that no part of the chosen sampler reads, or one it
// cannot honour at a value other than diffusers' default, is refused by name.
import DiffuseCore
import DiffusionModels
import Foundation

public struct SchedulerOverrides: Sendable {
    /// (key, value as typed), in command-line order; a later value of a key wins.
    public var pairs: [KeyValue] = []

    public struct KeyValue: Sendable, Equatable {
        public var key: String
        public var value: String
    }

    public init() {}

    public var isEmpty: Bool { pairs.isEmpty }

    /// Parses `KEY=VALUE`.
    public static func pair(_ text: String) throws -> KeyValue {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw DiffuseError.usage("\(Setting.schedulerOption) takes KEY=VALUE (e.g. solver_order=3), got \(text)")
        }
        return KeyValue(key: String(text[..<equals]), value: String(text[text.index(after: equals)...]))
    }

    /// The value as a JSON scalar would read (true, 3, 0.5, null, "text"; Python's True, False and
    /// None too), or else as a bare string (heun).
    static func jsonValue(_ text: String) -> Any {
        switch text {
        case "true", "True": return true
        case "false", "False": return false
        case "null", "None": return NSNull()
        default: break
        }
        if let n = Int(text) { return n }
        if text.hasPrefix("["), text.hasSuffix("]") {
            // A list of integers, as disable_corrector takes ([] or [0, 3]).
            let items = text.dropFirst().dropLast().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let numbers = items.compactMap { Int($0) }
            if numbers.count == items.count { return numbers }
        }
        if let x = Double(text), x.isFinite || text.lowercased().contains("inf") { return x }
        if text.count >= 2, text.first == "\"", text.last == "\"" { return String(text.dropFirst().dropLast()) }
        return text
    }

    /// Whether an override equals a default: numbers by value (1 and 1.0), the rest by kind and text.
    static func same(_ a: Any, _ b: Any) -> Bool {
        func number(_ v: Any) -> Double? { v is Bool ? nil : (v as? Int).map(Double.init) ?? (v as? Double) }
        if let x = number(a), let y = number(b) { return x == y }
        if a is NSNull || b is NSNull { return a is NSNull && b is NSNull }
        if let x = a as? Bool, let y = b as? Bool { return x == y }
        if let x = a as? String, let y = b as? String { return x == y }
        return false
    }

    /// DPMSolverMultistepScheduler keys it takes.
    static let dpmKeys: Set<String> = [
        "solver_order", "solver_type", "algorithm_type", "lower_order_final", "euler_at_final", "use_karras_sigmas",
        "final_sigmas_type", "lambda_min_clipped",
    ]
    /// Keys of the Euler and DPM-Solver schedulers this version keeps at diffusers' defaults, with
    /// those defaults: accepted at them, refused otherwise.
    static let fixedKeys: [SamplerKind: [String: Any]] = {
        let dpm: [String: Any] = [
            "use_exponential_sigmas": false, "use_beta_sigmas": false, "use_lu_lambdas": false, "use_flow_sigmas": false,
            "flow_shift": 1.0, "use_dynamic_shifting": false, "time_shift_type": "exponential",
        ]
        let euler: [String: Any] = [
            "interpolation_type": "linear", "use_karras_sigmas": false, "use_exponential_sigmas": false,
            "use_beta_sigmas": false, "sigma_min": NSNull(), "sigma_max": NSNull(), "timestep_type": "discrete",
            "final_sigmas_type": "zero",
        ]
        let unipc: [String: Any] = [
            "use_karras_sigmas": false, "use_exponential_sigmas": false, "use_beta_sigmas": false, "use_flow_sigmas": false,
            "flow_shift": 1.0, "use_dynamic_shifting": false, "time_shift_type": "exponential", "sigma_min": NSNull(),
            "sigma_max": NSNull(), "shift_terminal": NSNull(), "solver_p": NSNull(),
        ]
        return [
            .unipc: unipc, .pndm: [:], .euler: euler, .eulerAncestral: [:], .dpmPlusPlus2M: dpm, .dpmPlusPlus2MKarras: dpm,
            .dpmPlusPlus3M: dpm,
            .dpmPlusPlus2MSDE: dpm,
        ]
    }()

    /// What a sampler runs with once the overrides are applied.
    public struct Settings {
        public var config: SchedulerConfig
        /// DPM-Solver's options (nil for other samplers).
        public var dpm: DPMSolverOptions?
        /// PNDMScheduler's skip_prk_steps.
        public var skipPRKSteps = false
        /// UniPC's options (nil for other samplers).
        public var unipc: UniPCOptions?
    }

    /// UniPCMultistepScheduler keys it takes.
    static let unipcKeys: Set<String> = [
        "solver_order", "solver_type", "lower_order_final", "disable_corrector", "final_sigmas_type", "predict_x0",
    ]

    /// The scheduler config and options `kind` samples with after the overrides. `source` names
    /// where the keys came from in messages (a file); by default the flag.
    public func apply(to config: SchedulerConfig, kind: SamplerKind, source: String? = nil) throws -> Settings {
        let label = source ?? "\(Setting.schedulerOption)"
        var dpm = kind.dpmSolverOptions
        var skipPRKSteps = false
        var unipc = kind == .unipc ? UniPCOptions() : nil
        guard !pairs.isEmpty else { return Settings(config: config, dpm: dpm, unipc: unipc) }
        var file = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] ?? [:]
        let configKeys = Set(file.keys).union(["trained_betas"]).subtracting(["_class_name", "_diffusers_version"])
        for pair in pairs {
            let value = SchedulerOverrides.jsonValue(pair.value)
            if configKeys.contains(pair.key) {
                file[pair.key] = value
            } else if dpm != nil, SchedulerOverrides.dpmKeys.contains(pair.key) {
                try SchedulerOverrides.set(pair.key, value, in: &dpm!, label: label)
            } else if unipc != nil, SchedulerOverrides.unipcKeys.contains(pair.key) {
                try SchedulerOverrides.set(pair.key, value, in: &unipc!, label: label)
            } else if kind == .pndm, pair.key == "skip_prk_steps" {
                skipPRKSteps = try OverrideValue(key: pair.key, value: value, label: label).flag()
            } else if let fixed = SchedulerOverrides.fixedKeys[kind]?[pair.key] {
                guard SchedulerOverrides.same(value, fixed) else {
                    throw DiffuseError.usage(
                        "\(label) \(pair.key)=\(pair.value): this version samples \(kind.rawValue) with "
                            + "\(pair.key) at diffusers' default (\(fixed is NSNull ? "None" : "\(fixed)")) only")
                }
            } else {
                let own =
                    kind.dpmSolverOptions != nil
                    ? SchedulerOverrides.dpmKeys.sorted()
                    : kind == .pndm ? ["skip_prk_steps"] : kind == .unipc ? SchedulerOverrides.unipcKeys.sorted() : []
                throw DiffuseError.usage(
                    "\(label) \(pair.key): not a key of the \(kind.rawValue) sampler's config; it takes "
                        + (configKeys.sorted() + own).joined(separator: ", "))
            }
        }
        let data = try JSONSerialization.data(withJSONObject: file)
        var decoded: SchedulerConfig
        do {
            decoded = try JSONDecoder().decode(SchedulerConfig.self, from: data)
            // Written back in full, set_alpha_to_one would now look given: it is only if it was, or now is.
            decoded.setAlphaToOneInFile = config.setAlphaToOneInFile || pairs.contains { $0.key == "set_alpha_to_one" }
            try decoded.validate(source: "\(label)")
        } catch let error as DiffuseError {
            throw error
        } catch DecodingError.dataCorrupted(let context) {
            let key = context.codingPath.last?.stringValue ?? "a key"
            throw DiffuseError.usage("\(label) \(key): \(context.debugDescription)")
        } catch DecodingError.typeMismatch(let type, let context) {
            let key = context.codingPath.last?.stringValue ?? "a key"
            throw DiffuseError.usage("\(label) \(key): expected a value of type \(type)")
        } catch {
            throw DiffuseError.usage("\(label): \(error)")
        }
        return Settings(config: decoded, dpm: dpm, skipPRKSteps: skipPRKSteps, unipc: unipc)
    }

    static func set(_ key: String, _ value: Any, in options: inout UniPCOptions, label: String) throws {
        let v = OverrideValue(key: key, value: value, label: label)
        switch key {
        case "solver_order": options.solverOrder = try v.order()
        case "solver_type": options.solverType = try v.choice(UniPCOptions.SolverType.self, "bh1 or bh2")
        case "final_sigmas_type": options.finalSigmas = try v.choice(DPMSolverOptions.FinalSigmas.self, "zero or sigma_min")
        case "disable_corrector":
            guard let list = value as? [Int] else { throw v.error("a list of step indices such as [0, 1]") }
            options.disableCorrector = Set(list)
        case "predict_x0":
            guard value as? Bool == true else { throw v.error("true (this version samples UniPC with data predictions only)") }
        default: options.lowerOrderFinal = try v.flag()
        }
    }

    static func set(_ key: String, _ value: Any, in options: inout DPMSolverOptions, label: String) throws {
        let v = OverrideValue(key: key, value: value, label: label)
        switch key {
        case "solver_order": options.solverOrder = try v.order()
        case "solver_type": options.solverType = try v.choice(DPMSolverOptions.SolverType.self, "midpoint or heun")
        case "algorithm_type":
            options.algorithm = try v.choice(
                DPMSolverOptions.Algorithm.self,
                "dpmsolver++ or sde-dpmsolver++ (diffusers deprecates dpmsolver and sde-dpmsolver)")
        case "final_sigmas_type": options.finalSigmas = try v.choice(DPMSolverOptions.FinalSigmas.self, "zero or sigma_min")
        case "lambda_min_clipped":
            guard !(value is Bool), let n = (value as? Int).map(Double.init) ?? (value as? Double) else {
                throw v.error("a number")
            }
            options.lambdaMinClipped = n
        case "lower_order_final": options.lowerOrderFinal = try v.flag()
        case "euler_at_final": options.eulerAtFinal = try v.flag()
        default: options.useKarrasSigmas = try v.flag()
        }
    }
}

/// One override's value read as its key's type; a wrong one is a usage error naming key and value.
struct OverrideValue {
    let key: String
    let value: Any
    let label: String

    func error(_ expected: String) -> DiffuseError {
        DiffuseError.usage("\(label) \(key)=\(value): expected \(expected)")
    }

    /// A solver order, 1 to 3.
    func order() throws -> Int {
        guard !(value is Bool), let n = value as? Int, (1...3).contains(n) else { throw error("1, 2 or 3") }
        return n
    }

    func flag() throws -> Bool {
        guard let flag = value as? Bool else { throw error("true or false") }
        return flag
    }

    /// One of a config enum's names; `expected` lists them.
    func choice<T: RawRepresentable>(_: T.Type, _ expected: String) throws -> T where T.RawValue == String {
        guard let s = value as? String, let choice = T(rawValue: s) else { throw error(expected) }
        return choice
    }
}

extension SchedulerOverrides {
    /// The scheduler classes a pipeline folder may ship beside DDPM's and DDIM's, and their samplers.
    static let folderSamplers: [String: SamplerKind] = [
        "EulerDiscreteScheduler": .euler, "EulerAncestralDiscreteScheduler": .eulerAncestral,
        "DPMSolverMultistepScheduler": .dpmPlusPlus2M, "PNDMScheduler": .pndm, "UniPCMultistepScheduler": .unipc,
    ]

    /// The keys of a folder's scheduler_config.json that are the sampler's own (not the DDPM/DDIM
    /// keys `SchedulerConfig` reads), as overrides, so that each is honoured or refused by name as
    /// a --scheduler-option would be.
    static func ownKeys(of url: URL, config: SchedulerConfig) throws -> SchedulerOverrides {
        let scalars = try JSONFile.read([String: ConfigScalar].self, from: url, pythonNumbers: true)
        let shared = Set(
            (try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any] ?? [:]).keys
        ).union(["trained_betas", "_class_name", "_diffusers_version"])
        var overrides = SchedulerOverrides()
        overrides.pairs = scalars.filter { !shared.contains($0.key) }.sorted { $0.key < $1.key }.map {
            KeyValue(key: $0.key, value: $0.value.text)
        }
        return overrides
    }
}

/// A config value as text --scheduler-option would give it (arrays and objects are not read here).
enum ConfigScalar: Decodable {
    case bool(Bool), int(Int), double(Double), string(String), null, ints([Int]), other

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let list = try? c.decode([Int].self) {
            self = .ints(list)
        } else {
            self = .other
        }
    }

    var text: String {
        switch self {
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .null: return "null"
        case .ints(let list): return "[" + list.map(String.init).joined(separator: ", ") + "]"
        case .other: return "[...]"
        }
    }
}
