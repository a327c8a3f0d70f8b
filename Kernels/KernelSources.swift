// The OpenCL kernel sources, embedded in the binary at build time (no kernel file is read at run time).
import Foundation

public enum KernelSources {
    /// (file name, source) in a fixed order; the OpenCL backend builds them as one program.
    public static let files: [(name: String, source: String)] = [
        ("elementwise.cl", PackageResources.elementwise_cl),
        ("activation.cl", PackageResources.activation_cl),
        ("reduce.cl", PackageResources.reduce_cl),
        ("loss.cl", PackageResources.loss_cl),
        ("scheduler.cl", PackageResources.scheduler_cl),
        ("optimizer.cl", PackageResources.optimizer_cl),
        ("random.cl", PackageResources.random_cl),
        ("gemm.cl", PackageResources.gemm_cl),
        ("gemm_tiled.cl", PackageResources.gemm_tiled_cl),
        ("conv_tiled.cl", PackageResources.conv_tiled_cl),
        ("conv2d.cl", PackageResources.conv2d_cl),
        ("conv_rows.cl", PackageResources.conv_rows_cl),
        ("groupnorm.cl", PackageResources.groupnorm_cl),
        ("groupnorm_rows.cl", PackageResources.groupnorm_rows_cl),
        ("attention.cl", PackageResources.attention_cl),
        ("attention_fused.cl", PackageResources.attention_fused_cl),
        ("attention_lanes.cl", PackageResources.attention_lanes_cl),
        ("pool.cl", PackageResources.pool_cl),
    ].map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }

    /// All sources as one program text.
    public static var combined: String {
        files.map { "// ---- \($0.name)\n" + $0.source }.joined(separator: "\n")
    }
}
