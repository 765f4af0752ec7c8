/**
 * dbt target credentials in AWS Secrets Manager, one JSON secret per target: the warehouse
 * contract's `credentialSecrets[target]`, a flat JSON object whose keys are `credentialFields`.
 *
 * Why that shape: profiles.yml reads `targetEnvVar(target, field)` = `DBT_<TARGET>_<FIELD>`.
 * In CI, `aws-actions/aws-secretsmanager-get-secrets` with `parse-json-secrets: true` and the secret id
 * `DBT_<TARGET>, <namePrefix>/<target>` (alias from `envAlias`) exports one variable per JSON key,
 * named `<alias>_<KEY>`: `DBT_PROD_HOST`, ... `DBT_PROD_PASSWORD` on Postgres, `DBT_PROD_PRIVATE_KEY`
 * on Snowflake — exactly what profiles.yml asks for, with no mapping step in the workflow.
 * (`actionSecretIds` renders those lines.)
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { envAlias } from "../warehouse/contract";

export { envAlias };

/** Arguments of WarehouseCredentials. Target names are plain: they decide which secrets exist. */
export interface WarehouseCredentialsArgs {
    /** Secret name prefix, e.g. `dbt/prod`; each target's secret is `<namePrefix>/<target>`. */
    namePrefix: string;
    /** The credential JSON per target (a warehouse's `credentialSecrets`); a secret. */
    secrets: pulumi.Input<Record<string, string>>;
    /** Keys every target's JSON carries (the warehouse's `credentialFields`), in order. */
    fields: readonly string[];
    /** Targets to store, one secret each; every one must be present in `targets`. */
    targetNames: string[];
    /** KMS key (ID, ARN or alias) encrypting the secrets; default the account's aws/secretsmanager key. */
    kmsKeyId?: pulumi.Input<string>;
    /** Days a deleted secret stays recoverable: 0 (delete at once) or 7-30 (AWS default 30). */
    recoveryWindowInDays?: number;
}

/** One Secrets Manager secret per dbt target holding its credential JSON (e.g. `{host, port, user, password, dbname, schema}`). */
export class WarehouseCredentials extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: WarehouseCredentialsArgs): void {
        validate(name, args);
    }

    /** Secret ARN per target. */
    public readonly secretArns: Record<string, pulumi.Output<string>>;
    /** Secret name per target (`<namePrefix>/<target>`). */
    public readonly secretNames: Record<string, pulumi.Output<string>>;
    /** Secrets per target. */
    public readonly secrets: Record<string, aws.secretsmanager.Secret>;
    /** Current secret versions per target (their `secretString` is a secret). */
    public readonly versions: Record<string, aws.secretsmanager.SecretVersion>;
    /** `secret-ids` input of aws-secretsmanager-get-secrets: one `DBT_<TARGET>, <name>` line per target. */
    public readonly actionSecretIds: pulumi.Output<string>;

    constructor(name: string, args: WarehouseCredentialsArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        validate(name, args);
        super("dbt-platform:aws:WarehouseCredentials", name, {}, opts);

        const all = pulumi.output(args.secrets);
        this.secretArns = {};
        this.secretNames = {};
        this.secrets = {};
        this.versions = {};
        for (const target of args.targetNames) {
            const secret = new aws.secretsmanager.Secret(
                `${name}-${target}`,
                {
                    name: `${args.namePrefix}/${target}`,
                    description: `dbt target ${target}: ${args.fields.join(", ")} (read as ${envAlias(target)}_<FIELD>)`,
                    kmsKeyId: args.kmsKeyId,
                    recoveryWindowInDays: args.recoveryWindowInDays,
                },
                { parent: this },
            );
            const secretString = pulumi.secret(
                all.apply((secrets) => {
                    const json = secrets?.[target];
                    if (json === undefined || json === null) {
                        const have = Object.keys(secrets ?? {}).join(", ") || "none";
                        throw new Error(`WarehouseCredentials ${name}: target ${target} is declared in targetNames but missing from secrets (have: ${have})`);
                    }
                    // Field names only in errors: the values include the password or the private key.
                    let doc: Record<string, unknown>;
                    try {
                        doc = JSON.parse(json);
                    } catch {
                        throw new Error(`WarehouseCredentials ${name}: the secret of target ${target} is not JSON`);
                    }
                    if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error(`WarehouseCredentials ${name}: the secret of target ${target} is not a JSON object`);
                    const missing = args.fields.filter((f) => doc[f] === undefined || doc[f] === null || doc[f] === "");
                    if (missing.length > 0) throw new Error(`WarehouseCredentials ${name}: target ${target} has no ${missing.join(", ")}`);
                    const extra = Object.keys(doc).filter((k) => !args.fields.includes(k));
                    if (extra.length > 0) throw new Error(`WarehouseCredentials ${name}: target ${target} has fields outside fields: ${extra.join(", ")}`);
                    // Fields in the declared order: the action exports them in any order, but the secret reads the same on every up.
                    return JSON.stringify(Object.fromEntries(args.fields.map((f) => [f, doc[f]])));
                }),
            );
            this.versions[target] = new aws.secretsmanager.SecretVersion(
                `${name}-${target}-version`,
                { secretId: secret.id, secretString },
                { parent: this },
            );
            this.secrets[target] = secret;
            this.secretArns[target] = secret.arn;
            this.secretNames[target] = secret.name;
        }
        this.actionSecretIds = pulumi
            .all(args.targetNames.map((t) => this.secretNames[t]))
            .apply((names) => args.targetNames.map((t, i) => `${envAlias(t)}, ${names[i]}`).join("\n"));

        this.registerOutputs({ secretArns: this.secretArns, secretNames: this.secretNames, actionSecretIds: this.actionSecretIds });
    }
}

/** Rejects names that would make an invalid or ambiguous secret or environment variable. */
function validate(name: string, args: WarehouseCredentialsArgs): void {
    const problems: string[] = [];
    const prefix = args.namePrefix;
    if (typeof prefix !== "string" || !/^[A-Za-z0-9_+=.@-]+(?:\/[A-Za-z0-9_+=.@-]+)*$/.test(prefix) || prefix.length > 400) {
        problems.push(`namePrefix = ${JSON.stringify(prefix)}: expected a secret name prefix such as dbt/prod (letters, digits, _+=.@- separated by /)`);
    }
    if (!Array.isArray(args.fields) || args.fields.length === 0 || args.fields.some((f) => typeof f !== "string" || !/^[a-z][a-z0-9_]*$/.test(f))) {
        problems.push(`fields = ${JSON.stringify(args.fields)}: expected the credential JSON's keys (lower-case identifiers, e.g. host, private_key)`);
    }
    if (!Array.isArray(args.targetNames) || args.targetNames.length === 0) {
        problems.push("targetNames: expected at least one target");
    } else {
        const aliases = new Map<string, string>();
        for (const t of args.targetNames) {
            if (typeof t !== "string" || !/^[a-z][a-z0-9_-]*$/.test(t)) {
                problems.push(`targetNames: ${JSON.stringify(t)}: expected a target name (lower-case letter, then letters, digits, _ or -)`);
                continue;
            }
            // AWS resolves names ending in -XXXXXX as partial ARNs; keep target names clear of that shape.
            if (/-[A-Za-z0-9]{6}$/.test(t)) problems.push(`targetNames: ${t}: a secret name must not end in a hyphen and six characters`);
            const alias = envAlias(t);
            const clash = aliases.get(alias);
            if (clash === t) problems.push(`targetNames: ${t} is declared more than once`);
            else if (clash !== undefined) problems.push(`targetNames: ${clash} and ${t} both map to environment variables ${alias}_*`);
            else aliases.set(alias, t);
        }
    }
    const w = args.recoveryWindowInDays;
    if (w !== undefined && !(w === 0 || (Number.isInteger(w) && w >= 7 && w <= 30))) {
        problems.push(`recoveryWindowInDays = ${JSON.stringify(w)}: expected 0 or a whole number of days from 7 to 30`);
    }
    if (problems.length > 0) {
        throw new Error(`WarehouseCredentials ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
}
