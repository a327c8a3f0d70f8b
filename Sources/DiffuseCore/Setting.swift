// The settings a user chooses, as library messages mention them. A library error says
// "\(Setting.batchSize) must be positive"; `DiffuseError.description` words that with the setting's
// config key ("batch_size must be positive"), and the CLI with its flag ("--batch-size must be
// positive"), so no library message names a command-line flag.
public enum Setting: String, CaseIterable, Sendable, CustomStringConvertible {
    case model, config, dataset, epochs, seed, device, output, overwrite, resume, eta, scheduler
    case schedulerOption = "scheduler_option"
    case maxSteps = "max_steps"
    case batchSize = "batch_size"
    case learningRate = "learning_rate"
    case logEvery = "log_every"
    case checkpointEvery = "checkpoint_every"
    case checkpointsTotalLimit = "checkpoints_total_limit"
    case initFrom = "init_from"
    case steps = "num_inference_steps"
    case classLabels = "class_labels"
    case initialNoise = "init_noise"
    case betaSchedule = "beta_schedule"
    case predictionType = "prediction_type"
    case classConditional = "class_conditional"
    case condDropProb = "cond_drop_prob"
    case guidanceScale = "guidance_scale"
    case resolution
    case randomCrop = "random_crop"
    case randomFlip = "random_flip"
    case lrScheduler = "lr_scheduler"
    case lrWarmupSteps = "lr_warmup_steps"
    case adamBeta1 = "adam_beta1"
    case adamBeta2 = "adam_beta2"
    case adamEpsilon = "adam_epsilon"
    case adamWeightDecay = "adam_weight_decay"
    case useEMA = "use_ema"
    case emaMaxDecay = "ema_max_decay"
    case emaInvGamma = "ema_inv_gamma"
    case emaPower = "ema_power"
    case gradientAccumulationSteps = "gradient_accumulation_steps"
    case maxGradNorm = "max_grad_norm"
    case saveImagesEpochs = "save_images_epochs"
    case saveModelEpochs = "save_model_epochs"

    /// The token a message carries in place of the setting's name.
    public var description: String { Self.open + rawValue + Self.close }

    static let open = "{{"
    static let close = "}}"

    /// `message` with settings named by their config keys, for text shown outside a DiffuseError.
    public static func plain(_ message: String) -> String { word(message) { $0.rawValue } }

    /// `message` with each setting token replaced by `name(setting)`.
    public static func word(_ message: String, _ name: (Setting) -> String) -> String {
        guard message.contains(open) else { return message }
        var out = ""
        var rest = Substring(message)
        while let start = rest.range(of: open), let end = rest[start.upperBound...].range(of: close) {
            out += rest[..<start.lowerBound]
            let key = String(rest[start.upperBound..<end.lowerBound])
            out += Setting(rawValue: key).map(name) ?? key
            rest = rest[end.upperBound...]
        }
        return out + rest
    }
}
