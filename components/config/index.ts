import * as pulumi from "@pulumi/pulumi";
import type { WarehouseSecrets } from "../warehouse/factory";
import { NAMESPACE, parseStackConfig, StackConfig, WAREHOUSE_SECRET_KEYS } from "./stack";

export * from "./reader";
export * from "./rules";
export * from "./stack";

/**
 * Reads and validates the running stack's config. Call it before registering any
 * resource: a bad value throws here and nothing is half-applied.
 */
export function loadStackConfig(): StackConfig {
    const raw = pulumi.runtime.allConfig();
    // isConfigSecret (internal) reads PULUMI_CONFIG_SECRET_KEYS, which the language host sets from the
    // stack's `secure:` keys. It keeps secret values out of error text and tells a secret admin password
    // from a plain one (a plain one is an error).
    const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
    const secretKeys = Object.keys(raw).filter((k) => isSecret?.(k) ?? false);
    return parseStackConfig(pulumi.getStack(), raw, secretKeys);
}

/**
 * The running stack's warehouse admin credential, for the factory (components/warehouse/factory.ts):
 * only the key of the stack's warehouse kind is read (the config refuses the others), as a Pulumi secret.
 */
export function loadWarehouseSecrets(config: StackConfig): WarehouseSecrets {
    const value = new pulumi.Config(NAMESPACE).getSecret(WAREHOUSE_SECRET_KEYS[config.warehouse.kind]);
    if (value === undefined) return {};
    switch (config.warehouse.kind) {
        case "postgres":
            return { postgresAdminPassword: value };
        case "snowflake":
            return { snowflakePrivateKey: value };
        case "redshift":
            return { redshiftAdminPassword: value };
    }
}
