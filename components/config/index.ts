import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, StackConfig } from "./stack";

export * from "./reader";
export * from "./rules";
export * from "./stack";

/**
 * Reads and validates the running stack's config. Call it before registering any
 * resource: a bad value throws here and nothing is half-applied.
 */
export function loadStackConfig(): StackConfig {
    const raw = pulumi.runtime.allConfig();
    // isConfigSecret is marked internal; it only serves to keep secret values out of error text.
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    const secretKeys = Object.keys(raw).filter((k) => isSecret?.(k) ?? false);
    return parseStackConfig(pulumi.getStack(), raw, secretKeys);
}
