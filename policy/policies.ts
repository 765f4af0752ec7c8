/**
 * CrossGuard policies for the AWS side of dbt-platform (artifacts/docs buckets, docs CloudFront
 * distribution, CI IAM roles, CI credential secrets). `index.ts` wraps them in the PolicyPack; this
 * module only declares them, so tests can import it without starting the policy server.
 *
 * How the engine hands us data (checked against @pulumi/policy 1.21.0, server.js/deserialize.js):
 *
 * - Resource policies (`validateResource`) see a resource's *inputs*; stack policies
 *   (`validateStack`) run at the end of a preview or update and see every resource's *outputs*
 *   (state), plus `propertyDependencies` (input name -> the resources it was computed from).
 * - Values that are not known yet (preview of a resource whose inputs depend on a resource still
 *   to be created, e.g. `bucket: bucket.id`) arrive as sentinel strings, and `props` is wrapped in
 *   a proxy that THROWS `UnknownValueError` on reading one. Left alone, that error aborts the whole
 *   policy for every resource with an advisory "can't run during preview". Every read here goes
 *   through `get()`, which turns an unknown into the `UNKNOWN` marker instead, and each check
 *   treats `UNKNOWN` as "can't tell yet": the affected bucket/statement/behaviour is skipped, never
 *   reported. During `pulumi up` the same checks see resolved values and do report.
 * - Secrets: validation runs get secret values *unwrapped* to plain values (deserializeProperties
 *   is called with proxySecrets=false; only remediations get `Secret` wrappers). See
 *   `isSecretValue` and `noPlaintextSecretsInOutputs` for what that means for the secrets policy.
 */
import * as aws from "@pulumi/aws";
import {
    PolicyResource,
    ReportViolation,
    ResourceValidation,
    ResourceValidationPolicy,
    Secret,
    StackValidation,
    StackValidationArgs,
    StackValidationPolicy,
    validateResourceOfType,
} from "@pulumi/policy";

// ---------------------------------------------------------------------------------------------
// Type tokens (@pulumi/aws 7.x). The V2 names are deprecated v7 aliases of the same AWS objects;
// they are included so a component using them cannot slip past the bucket checks.
// ---------------------------------------------------------------------------------------------

export const TYPES = {
    bucket: ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"],
    publicAccessBlock: ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"],
    bucketAcl: ["aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"],
    bucketPolicy: ["aws:s3/bucketPolicy:BucketPolicy"],
    versioning: ["aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"],
    encryption: [
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    ],
    iamRole: "aws:iam/role:Role",
    iamRolePolicy: "aws:iam/rolePolicy:RolePolicy",
    iamPolicy: "aws:iam/policy:Policy",
    secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
    stack: "pulumi:pulumi:Stack",
} as const;

// ---------------------------------------------------------------------------------------------
// Unknown-safe reading
// ---------------------------------------------------------------------------------------------

/** Marker for "not known yet" (preview). */
export const UNKNOWN: unique symbol = Symbol("unknown");
export type Unknown = typeof UNKNOWN;

/**
 * The engine's unknown sentinels (boolean, number, string, array, asset, archive, object) as
 * @pulumi/policy receives them. The proxy in a real run throws before we ever see one; raw props
 * (no proxy) carry them as plain strings, so both cases are handled.
 */
const UNKNOWN_SENTINELS: ReadonlySet<string> = new Set([
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
]);

/** UnknownValueError is internal to @pulumi/policy (not exported from its typings): match by shape. */
function isUnknownValueError(e: unknown): boolean {
    return e instanceof Error && (e.constructor?.name === "UnknownValueError" || /can't be known during preview/.test(e.message));
}

/** `obj[key]`, with unknowns (thrown by the proxy, or raw sentinels) turned into UNKNOWN. */
export function get(obj: unknown, key: string | number): unknown {
    if (obj === UNKNOWN) return UNKNOWN;
    if (obj === null || typeof obj !== "object") return undefined;
    let v: unknown;
    try {
        v = (obj as Record<string | number, unknown>)[key];
    } catch (e) {
        if (isUnknownValueError(e)) return UNKNOWN;
        throw e;
    }
    return typeof v === "string" && UNKNOWN_SENTINELS.has(v) ? UNKNOWN : v;
}

/** The elements of an array (each possibly UNKNOWN); UNKNOWN if the array itself is; [] if absent. */
function items(v: unknown): unknown[] | Unknown {
    if (v === UNKNOWN) return UNKNOWN;
    if (!Array.isArray(v)) return [];
    const n = get(v, "length");
    if (typeof n !== "number") return UNKNOWN;
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(get(v, i));
    return out;
}

/** A nested block that the schema allows as an object or a one-element list. */
function block(v: unknown): unknown {
    if (Array.isArray(v)) {
        const xs = items(v);
        return xs === UNKNOWN ? UNKNOWN : xs[0];
    }
    return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return v !== null && typeof v === "object" && !Array.isArray(v);
}

const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

/**
 * Whether a value is marked secret, as far as a policy can see:
 * - an instance of @pulumi/policy's `Secret` (what the SDK hands remediations, and what a
 *   validation would get if secrets were ever preserved for it; `instanceof` sees through the
 *   unknown-checking proxy), or
 * - a still-serialised secret (`{"4dabf18193072939515e22adb298388d": "1b47…270", value}`).
 *
 * In @pulumi/policy 1.21.0 *validation* runs never contain either: the engine sends secrets
 * marked, but the SDK unwraps them to plain values before calling validateResource/validateStack
 * (pulumi/pulumi-policy#241, "secrets are unencrypted in policy-pack checks"). So in a real
 * preview/up a secret stack output is indistinguishable from a plain one.
 */
export function isSecretValue(v: unknown): boolean {
    if (v instanceof Secret) return true;
    return isObject(v) && get(v, SECRET_SIG_KEY) === SECRET_SIG;
}

/** The payload of a secret value (either form). */
function secretPayload(v: unknown): unknown {
    return v instanceof Secret ? v.value : get(v, "value");
}

/** A deep plain copy (reads through the proxy); UNKNOWN if anything inside is unknown. */
function toPlain(v: unknown): unknown {
    if (v === UNKNOWN) return UNKNOWN;
    if (isSecretValue(v)) return toPlain(secretPayload(v));
    if (Array.isArray(v)) {
        const xs = items(v);
        if (xs === UNKNOWN) return UNKNOWN;
        const out: unknown[] = [];
        for (const x of xs) {
            const p = toPlain(x);
            if (p === UNKNOWN) return UNKNOWN;
            out.push(p);
        }
        return out;
    }
    if (isObject(v)) {
        const out: Record<string, unknown> = {};
        for (const k of Object.keys(v)) {
            const p = toPlain(get(v, k));
            if (p === UNKNOWN) return UNKNOWN;
            out[k] = p;
        }
        return out;
    }
    return v;
}

function resourcesOfType(args: StackValidationArgs, types: readonly string[]): PolicyResource[] {
    return args.resources.filter((r) => types.includes(r.type));
}

// ---------------------------------------------------------------------------------------------
// IAM / bucket policy documents
// ---------------------------------------------------------------------------------------------

export type Statement = Record<string, unknown>;
export type ParsedPolicy = { statements: Statement[] } | { error: string } | Unknown;

/**
 * Parses an IAM-style policy document given as JSON text (what pulumi.jsonStringify produces) or
 * as an object (the SDK's PolicyDocument input form). UNKNOWN while the text is not known.
 */
export function parsePolicyDocument(raw: unknown): ParsedPolicy {
    const v = toPlain(raw);
    if (v === UNKNOWN) return UNKNOWN;
    let doc: unknown = v;
    if (typeof v === "string") {
        try {
            doc = JSON.parse(v);
        } catch (e) {
            return { error: `is not valid JSON (${(e as Error).message})` };
        }
    } else if (v === undefined || v === null) {
        return { error: "is missing" };
    }
    if (!isObject(doc)) return { error: "is not a JSON object" };
    const st = doc["Statement"];
    const list = Array.isArray(st) ? st : isObject(st) ? [st] : undefined;
    if (!list) return { error: "has no Statement" };
    if (!list.every(isObject)) return { error: "has a Statement entry that is not an object" };
    return { statements: list as Statement[] };
}

function asStrings(v: unknown): string[] {
    if (typeof v === "string") return [v];
    if (Array.isArray(v)) return v.filter((x): x is string => typeof x === "string");
    return [];
}

/** Anything but an explicit Deny counts as Allow (fail closed on a malformed Effect). */
function isAllow(s: Statement): boolean {
    return !(typeof s["Effect"] === "string" && s["Effect"].toLowerCase() === "deny");
}

function statementLabel(s: Statement, i: number): string {
    return typeof s["Sid"] === "string" && s["Sid"] !== "" ? `statement "${s["Sid"]}"` : `statement #${i + 1}`;
}

/** Problems with wildcard Allow statements: Action `*` or `service:*`, Resource `*`. */
export function wildcardFindings(statements: Statement[]): string[] {
    const findings: string[] = [];
    statements.forEach((s, i) => {
        if (!isAllow(s)) return;
        const label = statementLabel(s, i);
        const actions = asStrings(s["Action"]).filter((a) => a.trim() === "*" || a.trim().endsWith(":*"));
        if (actions.length > 0) findings.push(`${label} allows wildcard action ${actions.map((a) => `"${a}"`).join(", ")}`);
        if (asStrings(s["Resource"]).some((r) => r.trim() === "*")) findings.push(`${label} allows Resource "*"`);
    });
    return findings;
}

/** `"*"`, or a principal map with `"*"` under any key (`{AWS: "*"}`, `{AWS: ["…", "*"]}`). */
export function isPublicPrincipal(p: unknown): boolean {
    if (typeof p === "string") return p.trim() === "*";
    if (isObject(p)) return Object.values(p).some((v) => asStrings(v).some((x) => x.trim() === "*"));
    return false;
}

// ---------------------------------------------------------------------------------------------
// Matching bucket sub-resources (public access block, versioning, encryption) to buckets
// ---------------------------------------------------------------------------------------------

type Relation = "yes" | "no" | "unknown";

/**
 * Whether sub-resource `r` configures `bucket`: its `bucket` input equals the bucket's `bucket`
 * (name) or `id` output (the same value in v7), or — when the value is not known yet in a preview
 * — its `propertyDependencies.bucket` names the bucket resource. "unknown" when neither can tell.
 */
function relation(bucket: PolicyResource, r: PolicyResource): Relation {
    const ref = get(r.props, "bucket");
    const ids = [get(bucket.props, "bucket"), get(bucket.props, "id")].filter((x): x is string => typeof x === "string" && x !== "");
    if (typeof ref === "string" && ids.includes(ref)) return "yes";
    const deps = r.propertyDependencies?.["bucket"] ?? [];
    if (deps.some((d) => d.urn === bucket.urn)) return "yes";
    if (deps.length > 0) return "no";
    if (ref === UNKNOWN) return "unknown";
    if (typeof ref === "string" && ids.length === 0) return "unknown"; // the bucket's own name is not known yet
    return "no";
}

/** true = compliant; a string = what is wrong; UNKNOWN = can't tell yet. */
type Check = true | string | Unknown;

type Verdict = { kind: "ok" } | { kind: "unknown" } | { kind: "missing" } | { kind: "bad"; problems: string[] };

/**
 * Judges a bucket against the sub-resources of one kind: ok if one that configures it is
 * compliant; bad if those that certainly configure it are all non-compliant; unknown if that
 * can't be decided during a preview; missing if none configures it.
 */
function judge(bucket: PolicyResource, candidates: PolicyResource[], check: (r: PolicyResource) => Check): Verdict {
    let undecided = false;
    const problems: string[] = [];
    for (const c of candidates) {
        const rel = relation(bucket, c);
        if (rel === "no") continue;
        if (rel === "unknown") {
            undecided = true;
            continue;
        }
        const res = check(c);
        if (res === true) return { kind: "ok" };
        if (res === UNKNOWN) undecided = true;
        else problems.push(`${c.name}: ${res}`);
    }
    if (problems.length > 0) return { kind: "bad", problems };
    return undecided ? { kind: "unknown" } : { kind: "missing" };
}

function bucketLabel(b: PolicyResource): string {
    const name = get(b.props, "bucket");
    return typeof name === "string" && name !== "" ? `bucket ${b.name} (${name})` : `bucket ${b.name}`;
}

// ---------------------------------------------------------------------------------------------
// no-public-buckets
// ---------------------------------------------------------------------------------------------

export const PUBLIC_ACCESS_BLOCK_FLAGS = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"] as const;
export const PUBLIC_CANNED_ACLS: ReadonlySet<string> = new Set(["public-read", "public-read-write", "authenticated-read"]);

function checkPublicAccessBlock(r: PolicyResource): Check {
    let undecided = false;
    const off: string[] = [];
    for (const f of PUBLIC_ACCESS_BLOCK_FLAGS) {
        const v = get(r.props, f);
        if (v === UNKNOWN) undecided = true;
        else if (v !== true) off.push(f);
    }
    if (off.length > 0) return `${off.join(", ")} not true`;
    return undecided ? UNKNOWN : true;
}

function checkBucketPolicyText(raw: unknown, what: string, urn: string, report: ReportViolation): void {
    const parsed = parsePolicyDocument(raw);
    if (parsed === UNKNOWN) return;
    if ("error" in parsed) {
        report(`${what} ${parsed.error}; it cannot be checked for public access.`, urn);
        return;
    }
    parsed.statements.forEach((s, i) => {
        if (isAllow(s) && isPublicPrincipal(s["Principal"])) {
            report(`${what} ${statementLabel(s, i)} allows Principal "*" (anyone). Grant named principals instead.`, urn);
        }
    });
}

const validateNoPublicBuckets: StackValidation = (args, report) => {
    const buckets = resourcesOfType(args, TYPES.bucket);
    const blocks = resourcesOfType(args, TYPES.publicAccessBlock);
    for (const b of buckets) {
        const v = judge(b, blocks, checkPublicAccessBlock);
        if (v.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketPublicAccessBlock; add one with all four flags true.`, b.urn);
        } else if (v.kind === "bad") {
            report(`${bucketLabel(b)}: public access block must set ${PUBLIC_ACCESS_BLOCK_FLAGS.join(", ")} to true (${v.problems.join("; ")}).`, b.urn);
        }
        const acl = get(b.props, "acl");
        if (typeof acl === "string" && PUBLIC_CANNED_ACLS.has(acl)) {
            report(`${bucketLabel(b)} has canned ACL "${acl}"; buckets must not be publicly readable.`, b.urn);
        }
        const inline = get(b.props, "policy");
        if (inline !== undefined && inline !== null && inline !== "") {
            checkBucketPolicyText(inline, `${bucketLabel(b)} inline policy`, b.urn, report);
        }
    }
    for (const a of resourcesOfType(args, TYPES.bucketAcl)) {
        const acl = get(a.props, "acl");
        if (typeof acl === "string" && PUBLIC_CANNED_ACLS.has(acl)) {
            report(`bucket ACL ${a.name} sets canned ACL "${acl}"; buckets must not be publicly readable.`, a.urn);
        }
    }
    for (const p of resourcesOfType(args, TYPES.bucketPolicy)) {
        checkBucketPolicyText(get(p.props, "policy"), `bucket policy ${p.name}`, p.urn, report);
    }
};

export const noPublicBuckets: StackValidationPolicy = {
    name: "no-public-buckets",
    description:
        "Every S3 bucket has a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and " +
        "restrictPublicBuckets all true; no public canned ACL (public-read, public-read-write, authenticated-read); " +
        'no bucket policy statement that Allows Principal "*".',
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: validateNoPublicBuckets,
};

// ---------------------------------------------------------------------------------------------
// no-wildcard-iam
// ---------------------------------------------------------------------------------------------

const IAM_TYPES: readonly string[] = [TYPES.iamRolePolicy, TYPES.iamPolicy, TYPES.iamRole];

const validateNoWildcardIam: ResourceValidation = (args, report) => {
    if (!IAM_TYPES.includes(args.type)) {
        args.notApplicable(`Policy only applies to resources of type ${IAM_TYPES.join(", ")}`);
    }
    const documents: { label: string; raw: unknown }[] = [];
    if (args.type === TYPES.iamRole) {
        // Only the inline permission policies; assumeRolePolicy is a trust policy (no Resource).
        const inline = items(get(args.props, "inlinePolicies"));
        if (inline === UNKNOWN) return;
        inline.forEach((p, i) => {
            const raw = get(p, "policy");
            // `inlinePolicies: [{}]` is how a role declares "no inline policies".
            if (raw === undefined || raw === null || raw === "") return;
            const name = get(p, "name");
            documents.push({ label: `inline policy ${typeof name === "string" && name !== "" ? `"${name}"` : `#${i + 1}`}`, raw });
        });
    } else {
        documents.push({ label: "policy", raw: get(args.props, "policy") });
    }
    for (const { label, raw } of documents) {
        const parsed = parsePolicyDocument(raw);
        if (parsed === UNKNOWN) continue; // preview: the JSON embeds a value not known yet
        if ("error" in parsed) {
            report(`${label} ${parsed.error}; it cannot be checked for wildcards.`);
            continue;
        }
        for (const f of wildcardFindings(parsed.statements)) {
            report(`${label}: ${f}. Name the actions and resources this role needs.`);
        }
    }
};

export const noWildcardIam: ResourceValidationPolicy & { validateResource: ResourceValidation } = {
    name: "no-wildcard-iam",
    description:
        'IAM role policies, managed policies and role inline policies must not Allow Action "*" or "<service>:*", ' +
        'nor Resource "*" (Deny statements may use wildcards). Unparsable policy JSON is a violation.',
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: validateNoWildcardIam,
};

// ---------------------------------------------------------------------------------------------
// artifacts-bucket-versioned-encrypted
// ---------------------------------------------------------------------------------------------

export const ACCEPTED_SSE_ALGORITHMS: ReadonlySet<string> = new Set(["AES256", "aws:kms", "aws:kms:dsse"]);

function checkVersioning(r: PolicyResource): Check {
    const status = get(block(get(r.props, "versioningConfiguration")), "status");
    if (status === UNKNOWN) return UNKNOWN;
    return status === "Enabled" ? true : `versioningConfiguration.status is ${status === undefined ? "unset" : JSON.stringify(status)}, not "Enabled"`;
}

function checkEncryption(r: PolicyResource): Check {
    const rules = items(get(r.props, "rules"));
    if (rules === UNKNOWN) return UNKNOWN;
    let undecided = false;
    const seen: string[] = [];
    for (const rule of rules) {
        const alg = get(block(get(rule, "applyServerSideEncryptionByDefault")), "sseAlgorithm");
        if (alg === UNKNOWN) undecided = true;
        else if (typeof alg === "string" && ACCEPTED_SSE_ALGORITHMS.has(alg)) return true;
        else if (alg !== undefined) seen.push(JSON.stringify(alg));
    }
    if (undecided) return UNKNOWN;
    return `no rule sets applyServerSideEncryptionByDefault.sseAlgorithm to ${[...ACCEPTED_SSE_ALGORITHMS].join(", ")}` +
        (seen.length > 0 ? ` (found ${seen.join(", ")})` : "");
}

const validateVersionedEncrypted: StackValidation = (args, report) => {
    const versionings = resourcesOfType(args, TYPES.versioning);
    const encryptions = resourcesOfType(args, TYPES.encryption);
    for (const b of resourcesOfType(args, TYPES.bucket)) {
        const v = judge(b, versionings, checkVersioning);
        if (v.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketVersioning; add one with versioningConfiguration.status "Enabled".`, b.urn);
        } else if (v.kind === "bad") {
            report(`${bucketLabel(b)} is not versioned: ${v.problems.join("; ")}.`, b.urn);
        }
        const e = judge(b, encryptions, checkEncryption);
        if (e.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketServerSideEncryptionConfiguration; add one (AES256, aws:kms or aws:kms:dsse).`, b.urn);
        } else if (e.kind === "bad") {
            report(`${bucketLabel(b)} has no accepted default encryption: ${e.problems.join("; ")}.`, b.urn);
        }
    }
};

export const artifactsBucketVersionedEncrypted: StackValidationPolicy = {
    name: "artifacts-bucket-versioned-encrypted",
    description:
        'Every S3 bucket has a BucketVersioning with versioningConfiguration.status "Enabled" and a ' +
        "BucketServerSideEncryptionConfiguration with a default-encryption rule using AES256, aws:kms or aws:kms:dsse " +
        "(matched by the `bucket` input). Values still unknown during a preview are skipped, not reported.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: validateVersionedEncrypted,
};

// ---------------------------------------------------------------------------------------------
// cloudfront-https-only
// ---------------------------------------------------------------------------------------------

export const SECURE_VIEWER_PROTOCOL_POLICIES: ReadonlySet<string> = new Set(["redirect-to-https", "https-only"]);

/**
 * CloudFront security policies TLSv1.2_2021 and newer: TLSv1.2_<year ≥ 2021> (2021, 2025) and
 * any TLSv1.3+ policy (TLSv1.3_2025). Older ones (TLSv1.2_2019, TLSv1.2_2018, TLSv1.1_2016,
 * TLSv1_2016, TLSv1, SSLv3) and anything unrecognised are rejected.
 */
export function isModernTlsPolicy(v: unknown): boolean {
    const m = typeof v === "string" ? /^TLSv1\.(\d+)_(\d{4})$/.exec(v) : null;
    if (!m) return false;
    const minor = Number(m[1]);
    return minor >= 3 || (minor === 2 && Number(m[2]) >= 2021);
}

/** A custom certificate is configured (an unknown ARN still counts: it will be set). */
function isSetString(v: unknown): boolean {
    return v === UNKNOWN || (typeof v === "string" && v !== "");
}

export const cloudfrontHttpsOnly: ResourceValidationPolicy & { validateResource: ResourceValidation } = {
    name: "cloudfront-https-only",
    description:
        "CloudFront distributions use viewerProtocolPolicy redirect-to-https or https-only on the default and every " +
        "ordered cache behaviour, and with a custom (ACM/IAM) certificate a minimumProtocolVersion of TLSv1.2_2021 or newer.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: validateResourceOfType(aws.cloudfront.Distribution, (distribution, _args, report) => {
        const checkBehaviour = (behaviour: unknown, where: string): void => {
            const vpp = get(behaviour, "viewerProtocolPolicy");
            if (vpp === UNKNOWN) return;
            if (typeof vpp !== "string" || !SECURE_VIEWER_PROTOCOL_POLICIES.has(vpp)) {
                report(`${where} has viewerProtocolPolicy ${vpp === undefined ? "unset" : JSON.stringify(vpp)}; use "redirect-to-https" or "https-only".`);
            }
        };
        checkBehaviour(block(get(distribution, "defaultCacheBehavior")), "defaultCacheBehavior");
        const ordered = items(get(distribution, "orderedCacheBehaviors"));
        if (ordered !== UNKNOWN) {
            ordered.forEach((b, i) => {
                const pattern = get(b, "pathPattern");
                checkBehaviour(b, `orderedCacheBehaviors[${i}]${typeof pattern === "string" ? ` (${pattern})` : ""}`);
            });
        }
        const cert = block(get(distribution, "viewerCertificate"));
        if (isSetString(get(cert, "acmCertificateArn")) || isSetString(get(cert, "iamCertificateId"))) {
            const mpv = get(cert, "minimumProtocolVersion");
            if (mpv !== UNKNOWN && !isModernTlsPolicy(mpv)) {
                report(
                    `viewerCertificate.minimumProtocolVersion is ${mpv === undefined ? "unset (CloudFront defaults to TLSv1)" : JSON.stringify(mpv)}; ` +
                        'use "TLSv1.2_2021" or newer.',
                );
            }
        }
    }),
};

// ---------------------------------------------------------------------------------------------
// no-plaintext-secrets-in-outputs
// ---------------------------------------------------------------------------------------------

/** Output keys that name a credential. */
export const SENSITIVE_KEY = /password|secret|token|private_?key/i;

/**
 * Keys that name a *reference* to a credential rather than the credential: `dbSecretArn`,
 * `ciTokenSecretName`, `secret_id`, `SECRET_ARN`, `arn`, `name`. Their subtree is not treated as
 * sensitive (nested sensitive keys are still checked).
 */
const CAMEL_REFERENCE_SUFFIX = /(?:Arns?|ARNs?|Ids?|IDs?|Names?)$/;
const SEPARATED_REFERENCE_SUFFIX = /(?:^|[_\-.])(?:arns?|ids?|names?)$/i;

export function isSensitiveKey(key: string): boolean {
    return SENSITIVE_KEY.test(key) && !isReferenceKey(key);
}

export function isReferenceKey(key: string): boolean {
    return CAMEL_REFERENCE_SUFFIX.test(key) || SEPARATED_REFERENCE_SUFFIX.test(key);
}

/** Outputs of index.ts that hold credentials and are exported as secrets. */
export const PROGRAM_SECRET_OUTPUTS = ["dbtTargets", "developerTargets", "profileEnvironment", "docsBasicAuth"] as const;

export interface NoPlaintextSecretsConfig {
    /**
     * Output paths (`dbtTargets`, `dbtTargets.ci.password`, `tokens[0]`) exempt from the check, with
     * their subtrees. The escape hatch while @pulumi/policy hides secretness (see below).
     */
    allowedOutputPaths?: string[];
}

function joinPath(path: string, key: string | number): string {
    return typeof key === "number" ? `${path}[${key}]` : path === "" ? key : `${path}.${key}`;
}

function isAllowedPath(path: string, allowed: readonly string[]): boolean {
    return allowed.some((p) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`));
}

/**
 * Paths of plain (non-secret) string/number values that sit under a sensitive key. Secret
 * subtrees and unknown values are skipped; booleans, null and "" carry nothing to leak.
 */
export function plaintextSensitivePaths(value: unknown, allowed: readonly string[] = [], path = "", sensitive = false): string[] {
    if (value === UNKNOWN || isSecretValue(value)) return [];
    if (path !== "" && isAllowedPath(path, allowed)) return [];
    if (Array.isArray(value)) {
        const xs = items(value);
        if (xs === UNKNOWN) return [];
        return xs.flatMap((x, i) => plaintextSensitivePaths(x, allowed, joinPath(path, i), sensitive));
    }
    if (isObject(value)) {
        return Object.keys(value).flatMap((k) => {
            const childSensitive = isReferenceKey(k) ? false : sensitive || isSensitiveKey(k);
            return plaintextSensitivePaths(get(value, k), allowed, joinPath(path, k), childSensitive);
        });
    }
    if (sensitive && ((typeof value === "string" && value !== "") || typeof value === "number")) return [path];
    return [];
}

const validateNoPlaintextSecrets: StackValidation = (args, report) => {
    const config = (typeof args.getConfig === "function" ? args.getConfig<NoPlaintextSecretsConfig>() : undefined) ?? {};
    const allowed = Array.isArray(config.allowedOutputPaths) ? config.allowedOutputPaths.filter((p) => typeof p === "string") : [];
    for (const stack of resourcesOfType(args, [TYPES.stack])) {
        // The root stack resource's props are the stack outputs. Values are never echoed.
        for (const path of plaintextSensitivePaths(stack.props, allowed)) {
            report(`stack output ${path} looks like a credential but is not a secret; wrap it in pulumi.secret() (or don't export it).`, stack.urn);
        }
    }
    for (const v of resourcesOfType(args, [TYPES.secretVersion])) {
        const s = get(v.props, "secretString");
        if (s === undefined || s === null || s === "" || s === UNKNOWN) continue;
        const declaredSecret = (v.opts?.additionalSecretOutputs ?? []).includes("secretString");
        if (!isSecretValue(s) && !declaredSecret) {
            report(`secret version ${v.name}: secretString is not marked secret; pass pulumi.secret(...) or additionalSecretOutputs ["secretString"].`, v.urn);
        }
    }
};

/**
 * How secretness is detected, and what that means in a real run:
 *
 * A value counts as secret if `isSecretValue` says so (a @pulumi/policy `Secret` instance or a
 * serialised secret), or — for SecretVersion.secretString — if the resource's
 * `opts.additionalSecretOutputs` lists `secretString` (@pulumi/aws always adds it, so the engine
 * stores the value encrypted).
 *
 * @pulumi/policy 1.21.0 strips secret markers before validateStack runs, so in a real
 * `pulumi preview/up --policy-pack` every stack output arrives as a plain value: this policy then
 * reports every non-empty string/number under a sensitive key, secret or not — i.e. it enforces
 * "don't export credentials", including today's `dbtTargets`, `developerTargets` and
 * `profileEnvironment` (which ARE pulumi.secret). Exempt those deliberately via the policy config
 * `allowedOutputPaths`, or run the policy as advisory, until the SDK exposes secretness
 * (pulumi/pulumi-policy#241). The SecretVersion check is unaffected (it reads the options).
 */
export const noPlaintextSecretsInOutputs: StackValidationPolicy = {
    name: "no-plaintext-secrets-in-outputs",
    description:
        "Stack outputs under a key matching /password|secret|token|private_?key/i (at any depth) must be secrets, and " +
        "every Secrets Manager SecretVersion's secretString must be marked secret.",
    enforcementLevel: "mandatory",
    severity: "critical",
    configSchema: {
        properties: {
            allowedOutputPaths: {
                type: "array",
                items: { type: "string" },
                // The program's own credential outputs, which it exports as pulumi.secret (proved by
                // test/warehouse.test.ts); the SDK hides that here, so they are exempt by default.
                default: [...PROGRAM_SECRET_OUTPUTS],
                description: "Output paths (and their subtrees) exempt from the stack-output check.",
            },
        },
    },
    validateStack: validateNoPlaintextSecrets,
};

// ---------------------------------------------------------------------------------------------

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    noPublicBuckets,
    noWildcardIam,
    artifactsBucketVersionedEncrypted,
    cloudfrontHttpsOnly,
    noPlaintextSecretsInOutputs,
];
