/**
 * CrossGuard policies for the AWS side of dbt-platform (artifacts/docs buckets, docs CloudFront
 * distribution, CI IAM roles with their trust policies and attached managed policies, CI credential
 * secrets, and anywhere else a credential could sit in plain text). `index.ts` wraps them in the
 * PolicyPack; this module only declares them, so tests can import it without starting the policy server.
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
import {
    PolicyResource,
    ReportViolation,
    ResourceValidation,
    ResourceValidationPolicy,
    Secret,
    StackValidation,
    StackValidationArgs,
    StackValidationPolicy,
} from "@pulumi/policy";

// ---------------------------------------------------------------------------------------------
// Type tokens (@pulumi/aws 7.x). The V2 names are deprecated v7 aliases of the same AWS objects;
// they are included so a component using them cannot slip past the bucket checks.
// ---------------------------------------------------------------------------------------------

export const TYPES = {
    bucket: ["aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"],
    publicAccessBlock: ["aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"],
    bucketAcl: ["aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2"],
    bucketPolicy: [
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3control/bucketPolicy:BucketPolicy",
        "aws:s3control/accessPointPolicy:AccessPointPolicy",
        "aws:s3control/objectLambdaAccessPointPolicy:ObjectLambdaAccessPointPolicy",
    ],
    /** Access points whose own `policy` input is optional. */
    accessPoint: ["aws:s3/accessPoint:AccessPoint"],
    object: ["aws:s3/bucketObject:BucketObject", "aws:s3/bucketObjectv2:BucketObjectv2", "aws:s3/objectCopy:ObjectCopy"],
    versioning: ["aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2"],
    encryption: [
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    ],
    iamRole: "aws:iam/role:Role",
    iamRolePolicy: "aws:iam/rolePolicy:RolePolicy",
    iamUserPolicy: "aws:iam/userPolicy:UserPolicy",
    iamGroupPolicy: "aws:iam/groupPolicy:GroupPolicy",
    iamPolicy: "aws:iam/policy:Policy",
    secretVersion: "aws:secretsmanager/secretVersion:SecretVersion",
    ssmParameter: "aws:ssm/parameter:Parameter",
    lambdaFunction: "aws:lambda/function:Function",
    ecsTaskDefinition: "aws:ecs/taskDefinition:TaskDefinition",
    distribution: "aws:cloudfront/distribution:Distribution",
    multitenantDistribution: "aws:cloudfront/multitenantDistribution:MultitenantDistribution",
    vpcOrigin: "aws:cloudfront/vpcOrigin:VpcOrigin",
    stack: "pulumi:pulumi:Stack",
} as const;

/**
 * Resources that attach managed policies, and the input naming them: one ARN (`policyArn`) or a
 * list (`policyArns`, Role's deprecated `managedPolicyArns`).
 */
export const POLICY_ATTACHMENTS: readonly { type: string; field: string; list: boolean }[] = [
    { type: "aws:iam/rolePolicyAttachment:RolePolicyAttachment", field: "policyArn", list: false },
    { type: "aws:iam/userPolicyAttachment:UserPolicyAttachment", field: "policyArn", list: false },
    { type: "aws:iam/groupPolicyAttachment:GroupPolicyAttachment", field: "policyArn", list: false },
    { type: "aws:iam/policyAttachment:PolicyAttachment", field: "policyArn", list: false },
    { type: "aws:iam/rolePolicyAttachmentsExclusive:RolePolicyAttachmentsExclusive", field: "policyArns", list: true },
    { type: "aws:iam/userPolicyAttachmentsExclusive:UserPolicyAttachmentsExclusive", field: "policyArns", list: true },
    { type: "aws:iam/groupPolicyAttachmentsExclusive:GroupPolicyAttachmentsExclusive", field: "policyArns", list: true },
    { type: "aws:iam/role:Role", field: "managedPolicyArns", list: true },
];

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

/** IAM wildcards: `*` (any run of characters) and `?` (one character). */
export function hasWildcard(v: string): boolean {
    return /[*?]/.test(v);
}

/** Whether IAM pattern `pattern` (with `*`/`?`) matches `value`; IAM action names are case-insensitive. */
export function iamPatternMatches(pattern: string, value: string): boolean {
    const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
    return new RegExp(`^${re}$`, "i").test(value);
}

/**
 * The only wildcard a Resource may carry: the trailing `/*` of a literal key prefix below a literal
 * bucket, `arn:aws:s3:::<bucket>/<prefix>/*` (the platform's `artifacts/*`, `docs/*`). Everything
 * else with `*` or `?` — `*`, `arn:aws:s3:::*`, `arn:aws:s3:::<bucket>/*` (the whole bucket),
 * `…:secret:*` — spans more than one prefix of one bucket.
 */
export function isScopedResource(r: string): boolean {
    const v = r.trim();
    if (!hasWildcard(v)) return true;
    return /^arn:aws[a-z-]*:s3:::[^/*?]+\/[^*?]+\/\*$/.test(v);
}

/**
 * The first narrow exception ECS needs: `ecr:GetAuthorizationToken` has no resource-level permissions, so
 * it can only be granted on `"*"`. Allowed only when it is the statement's one and only action (any other
 * action beside it, or any wildcard action, would ride on the `"*"`).
 */
export function isEcrTokenStatement(s: Statement): boolean {
    const actions = asStrings(s["Action"]);
    const resources = asStrings(s["Resource"]);
    return (
        actions.length > 0 &&
        actions.every((a) => a.trim().toLowerCase() === "ecr:getauthorizationtoken") &&
        resources.length > 0 &&
        resources.every((r) => r.trim() === "*")
    );
}

/** The only actions the log-stream prefix exception covers: what awslogs does with a task's streams. */
const LOG_STREAM_ACTIONS = new Set(["logs:createlogstream", "logs:putlogevents"]);

/**
 * The second narrow exception: awslogs names a task's streams `<prefix>/<container>/<task id>`, so log
 * writes need the trailing `/*` of a literal stream prefix inside one literal log group in one literal
 * region and account, `arn:aws:logs:<region>:<account>:log-group:<name>:log-stream:<prefix>/*`, and
 * only for logs:CreateLogStream / logs:PutLogEvents.
 */
export function isLogStreamPrefixResource(r: string): boolean {
    return /^arn:aws[a-z-]*:logs:[a-z0-9-]+:\d{12}:log-group:[^:*?]+:log-stream:[^:*?]+\/\*$/.test(r.trim());
}

function isLogStreamStatement(s: Statement): boolean {
    const actions = asStrings(s["Action"]);
    return actions.length > 0 && actions.every((a) => LOG_STREAM_ACTIONS.has(a.trim().toLowerCase()));
}

/**
 * Problems with the Allow statements of a permissions policy (identity or bucket policy):
 * `NotAction` / `NotResource` (they grant everything but a list), any `*` or `?` in an Action
 * (`*`, `s3:*`, `s3:*Object`, `iam:Pass*`, `s3:Get*`), and any Resource wildcard beyond a single key
 * prefix of one bucket (see isScopedResource). Deny statements may use all of these. The two exceptions ECS
 * needs are isEcrTokenStatement and isLogStreamPrefixResource, each for its own actions only.
 */
export function wildcardFindings(statements: Statement[]): string[] {
    const findings: string[] = [];
    statements.forEach((s, i) => {
        if (!isAllow(s)) return;
        const label = statementLabel(s, i);
        if (s["NotAction"] !== undefined) findings.push(`${label} allows NotAction (every action but those listed)`);
        const actions = asStrings(s["Action"]).filter(hasWildcard);
        if (actions.length > 0) findings.push(`${label} allows wildcard action ${actions.map((a) => JSON.stringify(a)).join(", ")}`);
        if (s["NotResource"] !== undefined) findings.push(`${label} allows NotResource (every resource but those listed)`);
        const resources = asStrings(s["Resource"]);
        if (resources.some((r) => r.trim() === "*") && !(s["NotAction"] === undefined && isEcrTokenStatement(s))) findings.push(`${label} allows Resource "*"`);
        const logStreams = s["NotAction"] === undefined && isLogStreamStatement(s);
        const broad = resources.filter((r) => r.trim() !== "*" && !isScopedResource(r) && !(logStreams && isLogStreamPrefixResource(r)));
        if (broad.length > 0) findings.push(`${label} allows wildcard resource ${broad.map((r) => JSON.stringify(r)).join(", ")}`);
    });
    return findings;
}

/** `"*"`, or a principal map with a `*` in any value (`{AWS: "*"}`, `{AWS: ["…", "*"]}`, `arn:aws:iam::*:root`). */
export function isPublicPrincipal(p: unknown): boolean {
    if (typeof p === "string") return p.includes("*");
    if (isObject(p)) return Object.values(p).some((v) => asStrings(v).some((x) => x.includes("*")));
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

type Verdict =
    | { kind: "ok" }
    | { kind: "unknown" }
    | { kind: "missing" }
    | { kind: "bad"; problems: string[]; duplicates: string[] };

/**
 * Judges a bucket against the sub-resources of one kind. Exactly one may configure it: two (one
 * strict, one lax; or Enabled and Suspended) fight over the same S3 setting, the last applied wins,
 * and deleting either removes the setting. So: bad if more than one certainly configures it, or if
 * one that does is non-compliant; ok if exactly one does and is compliant; missing if none does;
 * unknown if a preview can't tell.
 */
function judge(bucket: PolicyResource, candidates: PolicyResource[], check: (r: PolicyResource) => Check): Verdict {
    let undecided = false;
    const problems: string[] = [];
    const configuring: PolicyResource[] = [];
    for (const c of candidates) {
        const rel = relation(bucket, c);
        if (rel === "no") continue;
        if (rel === "unknown") {
            undecided = true;
            continue;
        }
        configuring.push(c);
        const res = check(c);
        if (res === UNKNOWN) undecided = true;
        else if (res !== true) problems.push(`${c.name}: ${res}`);
    }
    const duplicates = configuring.length > 1 ? configuring.map((c) => c.name) : [];
    if (problems.length > 0 || duplicates.length > 0) return { kind: "bad", problems, duplicates };
    if (configuring.length === 0) return undecided ? { kind: "unknown" } : { kind: "missing" };
    return undecided ? { kind: "unknown" } : { kind: "ok" };
}

/** The violation text for a duplicated sub-resource, or undefined. */
function duplicateText(b: PolicyResource, v: Verdict, what: string): string | undefined {
    if (v.kind !== "bad" || v.duplicates.length === 0) return undefined;
    return `${bucketLabel(b)} has ${v.duplicates.length} ${what} resources (${v.duplicates.join(", ")}); they overwrite each other and deleting one removes the setting. Keep exactly one.`;
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

/** The ACL grantee groups that mean "anyone" and "any AWS account". */
const PUBLIC_GRANTEE_URI = /^https?:\/\/acs\.amazonaws\.com\/groups\/global\/(AllUsers|AuthenticatedUsers)\/?$/i;

/** Public grants among ACL grant entries: `uri` directly (Bucket `grants`) or under `grantee` (BucketAcl). */
function publicGrants(grants: unknown): string[] {
    const list = items(grants);
    if (list === UNKNOWN) return [];
    const found: string[] = [];
    for (const g of list) {
        const grantee = get(g, "grantee");
        const uri = grantee === undefined ? get(g, "uri") : get(block(grantee), "uri");
        if (typeof uri === "string" && PUBLIC_GRANTEE_URI.test(uri.trim())) {
            const perms = asStrings(get(g, "permission")).concat(asStrings(toPlain(get(g, "permissions"))));
            found.push(`${uri.trim().replace(/.*\//, "")}${perms.length > 0 ? ` (${perms.join(", ")})` : ""}`);
        }
    }
    return found;
}

function checkBucketPolicyText(raw: unknown, what: string, urn: string, report: ReportViolation): void {
    const parsed = parsePolicyDocument(raw);
    if (parsed === UNKNOWN) return;
    if ("error" in parsed) {
        report(`${what} ${parsed.error}; it cannot be checked for public access.`, urn);
        return;
    }
    parsed.statements.forEach((s, i) => {
        if (!isAllow(s)) return;
        const label = statementLabel(s, i);
        if (isPublicPrincipal(s["Principal"])) {
            report(`${what} ${label} allows Principal "*" (anyone). Grant named principals instead.`, urn);
        }
        if (s["NotPrincipal"] !== undefined) {
            report(`${what} ${label} allows NotPrincipal (everyone but those listed). Grant named principals with Principal instead.`, urn);
        }
        for (const key of ["NotAction", "NotResource"]) {
            if (s[key] !== undefined) report(`${what} ${label} allows ${key} (everything but those listed). Name the actions and resources.`, urn);
        }
    });
}

const validateNoPublicBuckets: StackValidation = (args, report) => {
    const buckets = resourcesOfType(args, TYPES.bucket);
    const blocks = resourcesOfType(args, TYPES.publicAccessBlock);
    for (const b of buckets) {
        const v = judge(b, blocks, checkPublicAccessBlock);
        const dup = duplicateText(b, v, "aws.s3.BucketPublicAccessBlock");
        if (dup) report(dup, b.urn);
        if (v.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketPublicAccessBlock; add one with all four flags true.`, b.urn);
        } else if (v.kind === "bad" && v.problems.length > 0) {
            report(`${bucketLabel(b)}: public access block must set ${PUBLIC_ACCESS_BLOCK_FLAGS.join(", ")} to true (${v.problems.join("; ")}).`, b.urn);
        }
        const acl = get(b.props, "acl");
        if (typeof acl === "string" && PUBLIC_CANNED_ACLS.has(acl)) {
            report(`${bucketLabel(b)} has canned ACL "${acl}"; buckets must not be publicly readable.`, b.urn);
        }
        const grants = publicGrants(get(b.props, "grants"));
        if (grants.length > 0) report(`${bucketLabel(b)} grants ${grants.join(", ")}; buckets must not be public.`, b.urn);
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
        const grants = publicGrants(get(block(get(a.props, "accessControlPolicy")), "grants"));
        if (grants.length > 0) report(`bucket ACL ${a.name} grants ${grants.join(", ")}; buckets must not be public.`, a.urn);
    }
    for (const p of resourcesOfType(args, TYPES.bucketPolicy)) {
        checkBucketPolicyText(get(p.props, "policy"), `bucket policy ${p.name}`, p.urn, report);
    }
    for (const p of resourcesOfType(args, TYPES.accessPoint)) {
        const raw = get(p.props, "policy");
        if (raw !== undefined && raw !== null && raw !== "") checkBucketPolicyText(raw, `access point ${p.name} policy`, p.urn, report);
    }
    for (const o of resourcesOfType(args, TYPES.object)) {
        const acl = get(o.props, "acl");
        if (typeof acl === "string" && PUBLIC_CANNED_ACLS.has(acl)) {
            report(`object ${o.name} sets canned ACL "${acl}"; objects must not be publicly readable.`, o.urn);
        }
        const grants = publicGrants(get(o.props, "grants"));
        if (grants.length > 0) report(`object ${o.name} grants ${grants.join(", ")}; objects must not be public.`, o.urn);
    }
};

export const noPublicBuckets: StackValidationPolicy = {
    name: "no-public-buckets",
    description:
        "Every S3 bucket has a BucketPublicAccessBlock with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and " +
        "restrictPublicBuckets all true, and only one per bucket; no public canned ACL (public-read, public-read-write, " +
        "authenticated-read) and no ACL grant to AllUsers or AuthenticatedUsers; no bucket policy Allow statement with " +
        'Principal "*", NotPrincipal, NotAction or NotResource.',
    enforcementLevel: "mandatory",
    severity: "critical",
    validateStack: validateNoPublicBuckets,
};

// ---------------------------------------------------------------------------------------------
// no-wildcard-iam
// ---------------------------------------------------------------------------------------------

const IAM_TYPES: readonly string[] = [TYPES.iamRolePolicy, TYPES.iamUserPolicy, TYPES.iamGroupPolicy, TYPES.iamPolicy, TYPES.iamRole];

const validateNoWildcardIam: ResourceValidation = (args, report) => {
    if (!IAM_TYPES.includes(args.type)) {
        args.notApplicable(`Policy only applies to resources of type ${IAM_TYPES.join(", ")}`);
    }
    const documents: { label: string; raw: unknown }[] = [];
    if (args.type === TYPES.iamRole) {
        // Only the inline permission policies; assumeRolePolicy (no Resource) is trust-policies-constrained's.
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
        "IAM role, user and group policies, managed policies and role inline policies: no Allow statement with NotAction, " +
        "NotResource, a `*` or `?` in any Action, or a Resource wildcard other than the trailing /* of one key prefix " +
        "of one bucket (Deny statements may use wildcards). Unparsable policy JSON is a violation.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: validateNoWildcardIam,
};

// ---------------------------------------------------------------------------------------------
// trust-policies-constrained
// ---------------------------------------------------------------------------------------------

const WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity";
/** The only operators that constrain a single-valued claim (ForAllValues passes when the claim is absent). */
const CONSTRAINING_OPERATORS: ReadonlySet<string> = new Set(["stringequals", "stringlike"]);

/**
 * How the subject of each CI system's OIDC token must be pinned when matched with StringLike: the
 * literal text before the first wildcard must name one repository (GitHub `repo:<owner>/<repo>:`,
 * Bitbucket `{<repository uuid>}`). Azure DevOps subjects (`sc://<org>/<project>/<connection>`) and
 * other issuers' have no wildcard form that names only one pipeline identity, so there they must be literal.
 */
export const SUBJECT_RULES: readonly { issuer: RegExp; literalPrefix: RegExp | undefined; expected: string }[] = [
    { issuer: /^token\.actions\.githubusercontent\.com(\/[^/]+)?$/i, literalPrefix: /^repo:[^/:]+\/[^/:]+:/, expected: "repo:<owner>/<repo>:… with owner and repository spelled out" },
    {
        issuer: /^api\.bitbucket\.org\/2\.0\/workspaces\/[^/]+\/pipelines-config\/identity\/oidc$/i,
        literalPrefix: /^\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}/i,
        expected: "{<repository uuid>}… with the repository UUID spelled out",
    },
    { issuer: /^vstoken\.dev\.azure\.com\/[^/]+$/i, literalPrefix: undefined, expected: "the exact sc://<organization>/<project>/<service connection>" },
];

/** The condition-key prefix of a federated principal: the issuer of an OIDC provider ARN, or the provider name itself. */
function issuerOf(federated: string): string | undefined {
    const m = /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/(.+)$/.exec(federated);
    if (m) return m[1];
    if (federated.startsWith("arn:")) return undefined; // a SAML provider: not web identity
    return federated;
}

/** Values a Condition gives `key` under a constraining operator (keys compare case-insensitively); undefined if none. */
function constrainedValues(condition: unknown, key: string): string[] | undefined {
    if (!isObject(condition)) return undefined;
    let found: string[] | undefined;
    for (const [op, block] of Object.entries(condition)) {
        if (!CONSTRAINING_OPERATORS.has(op.toLowerCase()) || !isObject(block)) continue;
        for (const [k, v] of Object.entries(block)) {
            if (k.toLowerCase() !== key.toLowerCase()) continue;
            const values = Array.isArray(v) ? v.map((x) => (typeof x === "string" ? x : JSON.stringify(x))) : [typeof v === "string" ? v : JSON.stringify(v)];
            // Under StringEquals a `*` is literal; mark it so the subject check knows.
            found = (found ?? []).concat(values.map((x) => (op.toLowerCase() === "stringequals" ? `=${x}` : `~${x}`)));
        }
    }
    return found;
}

/** What is wrong with one `sub` value (`=` exact, `~` pattern) for `issuer`, or undefined. */
function subjectProblem(issuer: string, tagged: string): string | undefined {
    const exact = tagged.startsWith("=");
    const value = tagged.slice(1);
    if (value.trim() === "") return "is empty";
    if (exact || !hasWildcard(value)) return undefined;
    const literal = value.slice(0, value.search(/[*?]/));
    const rule = SUBJECT_RULES.find((r) => r.issuer.test(issuer));
    if (rule?.literalPrefix && rule.literalPrefix.test(literal)) return undefined;
    return `pattern ${JSON.stringify(value)} does not pin one identity (expected ${rule ? rule.expected : "an exact subject for this issuer"})`;
}

/** Problems with the Allow statements of a role's trust policy. */
export function trustFindings(statements: Statement[]): string[] {
    const findings: string[] = [];
    statements.forEach((s, i) => {
        if (!isAllow(s)) return;
        const label = statementLabel(s, i);
        if (s["NotPrincipal"] !== undefined) findings.push(`${label} trusts NotPrincipal (everyone but those listed)`);
        if (isPublicPrincipal(s["Principal"])) findings.push(`${label} trusts Principal "*" (any AWS account)`);
        if (s["NotAction"] !== undefined) findings.push(`${label} allows NotAction (every sts action but those listed)`);
        const webIdentity = asStrings(s["Action"]).some((a) => iamPatternMatches(a, WEB_IDENTITY));
        if (!webIdentity) return;
        const principal = s["Principal"];
        const federated = isObject(principal) ? asStrings(principal["Federated"]) : [];
        for (const f of federated) {
            const issuer = issuerOf(f);
            if (issuer === undefined) continue;
            for (const claim of ["sub", "aud"] as const) {
                const values = constrainedValues(s["Condition"], `${issuer}:${claim}`);
                if (values === undefined) {
                    findings.push(`${label} lets ${issuer} tokens assume the role without a StringEquals/StringLike condition on ${issuer}:${claim}`);
                    continue;
                }
                for (const v of values) {
                    const problem =
                        claim === "sub" ? subjectProblem(issuer, v) : v.slice(1).trim() === "" ? "is empty" : v.startsWith("~") && hasWildcard(v) ? `pattern ${JSON.stringify(v.slice(1))} is a wildcard` : undefined;
                    if (problem) findings.push(`${label} condition ${issuer}:${claim} ${problem}`);
                }
            }
        }
    });
    return findings;
}

export const trustPoliciesConstrained: ResourceValidationPolicy & { validateResource: ResourceValidation } = {
    name: "trust-policies-constrained",
    description:
        'IAM role trust policies (assumeRolePolicy): no Allow statement trusting Principal "*" (or a `*` under any principal ' +
        "key), NotPrincipal or NotAction; every statement allowing sts:AssumeRoleWithWebIdentity pins the token's sub and aud " +
        "with StringEquals/StringLike, and a StringLike sub names one repository (GitHub repo:<owner>/<repo>:…, Bitbucket " +
        "{<repository uuid>}…; Azure DevOps and other issuers exact).",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateResource: (args, report) => {
        if (args.type !== TYPES.iamRole) args.notApplicable(`Policy only applies to resources of type ${TYPES.iamRole}`);
        const parsed = parsePolicyDocument(get(args.props, "assumeRolePolicy"));
        if (parsed === UNKNOWN) return; // preview: the JSON embeds the provider ARN, not known yet
        if ("error" in parsed) {
            report(`trust policy ${parsed.error}; it cannot be checked.`);
            return;
        }
        for (const f of trustFindings(parsed.statements)) report(`trust policy: ${f}.`);
    },
};

// ---------------------------------------------------------------------------------------------
// no-unvetted-managed-policies
// ---------------------------------------------------------------------------------------------

const AWS_MANAGED = /^arn:aws[a-z-]*:iam::aws:policy\/(.+)$/;
/** AWS-managed policies that no allow-list can admit: administrator, power-user and any *FullAccess. */
export const PRIVILEGED_MANAGED_POLICY = /(^|\/)(AdministratorAccess[^/]*|PowerUserAccess|[^/]*FullAccess[^/]*)$/;

export interface NoUnvettedManagedPoliciesConfig {
    /** Policy ARNs (AWS-managed, or customer policies declared elsewhere) that may be attached. */
    allowedPolicyArns?: string[];
}

/**
 * What is wrong with attaching `arn`, or undefined: a privileged AWS-managed policy (always), any
 * other AWS-managed or undeclared customer policy not on the allow-list (its document can't be seen
 * here), or a declared customer policy whose document fails no-wildcard-iam's checks.
 */
function attachmentProblem(arn: string, declared: PolicyResource | undefined, allowed: readonly string[]): string | undefined {
    const m = AWS_MANAGED.exec(arn);
    if (m) {
        if (PRIVILEGED_MANAGED_POLICY.test(m[1])) return `attaches the AWS-managed ${m[1]}, which grants far more than dbt CI/CD needs`;
        if (!allowed.includes(arn)) return `attaches the AWS-managed ${m[1]}, which is not on allowedPolicyArns`;
        return undefined;
    }
    if (declared) {
        const parsed = parsePolicyDocument(get(declared.props, "policy"));
        if (parsed === UNKNOWN) return undefined;
        if ("error" in parsed) return `attaches ${declared.name}, whose policy ${parsed.error}`;
        const findings = wildcardFindings(parsed.statements);
        return findings.length > 0 ? `attaches ${declared.name}, which is too broad: ${findings.join("; ")}` : undefined;
    }
    if (allowed.includes(arn)) return undefined;
    return `attaches ${arn}, which is not declared in this stack, so its document cannot be checked; declare it as aws.iam.Policy or list it in allowedPolicyArns`;
}

const validateNoUnvettedManagedPolicies: StackValidation = (args, report) => {
    const config = (typeof args.getConfig === "function" ? args.getConfig<NoUnvettedManagedPoliciesConfig>() : undefined) ?? {};
    const allowed = Array.isArray(config.allowedPolicyArns) ? config.allowedPolicyArns.filter((p) => typeof p === "string") : [];
    const declared = resourcesOfType(args, [TYPES.iamPolicy]);
    const byArn = (arn: string) => declared.find((p) => get(p.props, "arn") === arn);
    for (const { type, field, list } of POLICY_ATTACHMENTS) {
        for (const r of resourcesOfType(args, [type])) {
            const raw = get(r.props, field);
            const arns = list ? items(raw) : [raw];
            if (arns === UNKNOWN) continue;
            const deps = r.propertyDependencies?.[field] ?? [];
            for (const arn of arns) {
                if (arn === UNKNOWN) {
                    // Preview: a new customer policy's ARN; check the declared one it comes from, if any.
                    for (const d of deps.filter((x) => x.type === TYPES.iamPolicy)) {
                        const problem = attachmentProblem("", d, allowed);
                        if (problem) report(`${r.name}: ${problem}.`, r.urn);
                    }
                    continue;
                }
                if (typeof arn !== "string" || arn === "") continue;
                const problem = attachmentProblem(arn, byArn(arn), allowed);
                if (problem) report(`${r.name} (${field}): ${problem}.`, r.urn);
            }
        }
    }
};

export const noUnvettedManagedPolicies: StackValidationPolicy = {
    name: "no-unvetted-managed-policies",
    description:
        "Managed policies attached to roles, users and groups (RolePolicyAttachment, PolicyAttachment, *PolicyAttachmentsExclusive, " +
        "Role managedPolicyArns): never AdministratorAccess*, PowerUserAccess or *FullAccess; other AWS-managed policies only when on " +
        "allowedPolicyArns; customer policies must be declared in the stack with a document that passes no-wildcard-iam, or be allow-listed.",
    enforcementLevel: "mandatory",
    severity: "critical",
    configSchema: {
        properties: {
            allowedPolicyArns: {
                type: "array",
                items: { type: "string" },
                default: [],
                description: "Policy ARNs that may be attached (privileged AWS-managed policies stay forbidden).",
            },
        },
    },
    validateStack: validateNoUnvettedManagedPolicies,
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
        const vdup = duplicateText(b, v, "aws.s3.BucketVersioning");
        if (vdup) report(vdup, b.urn);
        if (v.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketVersioning; add one with versioningConfiguration.status "Enabled".`, b.urn);
        } else if (v.kind === "bad" && v.problems.length > 0) {
            report(`${bucketLabel(b)} is not versioned: ${v.problems.join("; ")}.`, b.urn);
        }
        const e = judge(b, encryptions, checkEncryption);
        const edup = duplicateText(b, e, "aws.s3.BucketServerSideEncryptionConfiguration");
        if (edup) report(edup, b.urn);
        if (e.kind === "missing") {
            report(`${bucketLabel(b)} has no aws.s3.BucketServerSideEncryptionConfiguration; add one (AES256, aws:kms or aws:kms:dsse).`, b.urn);
        } else if (e.kind === "bad" && e.problems.length > 0) {
            report(`${bucketLabel(b)} has no accepted default encryption: ${e.problems.join("; ")}.`, b.urn);
        }
    }
};

export const artifactsBucketVersionedEncrypted: StackValidationPolicy = {
    name: "artifacts-bucket-versioned-encrypted",
    description:
        'Every S3 bucket has exactly one BucketVersioning, with versioningConfiguration.status "Enabled", and exactly one ' +
        "BucketServerSideEncryptionConfiguration, with a default-encryption rule using AES256, aws:kms or aws:kms:dsse " +
        "(matched by the `bucket` input). Values still unknown during a preview are skipped, not reported.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateStack: validateVersionedEncrypted,
};

// ---------------------------------------------------------------------------------------------
// cloudfront-https-only
// ---------------------------------------------------------------------------------------------

export const SECURE_VIEWER_PROTOCOL_POLICIES: ReadonlySet<string> = new Set(["redirect-to-https", "https-only"]);
/** Origin TLS versions older than TLSv1.2. */
export const OUTDATED_ORIGIN_PROTOCOLS: ReadonlySet<string> = new Set(["SSLv3", "TLSv1", "TLSv1.1"]);

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

const CLOUDFRONT_TYPES: readonly string[] = [TYPES.distribution, TYPES.multitenantDistribution, TYPES.vpcOrigin];

/**
 * An origin's protocol settings (`customOriginConfig`, a multitenant `customOriginConfigs` entry or a
 * VpcOrigin's `vpcOriginEndpointConfig`): https-only, and no TLS older than 1.2 (`originSslProtocols`
 * is a list, or `{items, quantity}` on a VpcOrigin).
 */
function checkOriginTls(config: unknown, where: string, report: ReportViolation): void {
    const opp = get(config, "originProtocolPolicy");
    if (opp !== UNKNOWN && opp !== "https-only") {
        report(`${where} has originProtocolPolicy ${opp === undefined ? "unset" : JSON.stringify(opp)}; use "https-only" so CloudFront never fetches over plain HTTP.`);
    }
    const raw = get(config, "originSslProtocols");
    const protocols = Array.isArray(raw) || raw === UNKNOWN ? items(raw) : items(get(block(raw), "items"));
    if (protocols === UNKNOWN) return;
    const old = protocols.filter((p): p is string => typeof p === "string" && OUTDATED_ORIGIN_PROTOCOLS.has(p));
    if (old.length > 0) report(`${where} allows originSslProtocols ${old.map((p) => JSON.stringify(p)).join(", ")}; use "TLSv1.2".`);
}

/** A custom certificate is configured (an unknown ARN still counts: it will be set). */
function isSetString(v: unknown): boolean {
    return v === UNKNOWN || (typeof v === "string" && v !== "");
}

export const cloudfrontHttpsOnly: ResourceValidationPolicy & { validateResource: ResourceValidation } = {
    name: "cloudfront-https-only",
    description:
        "CloudFront distributions (and multitenant distributions) use viewerProtocolPolicy redirect-to-https or https-only " +
        "on the default and every other cache behaviour, originProtocolPolicy https-only (TLSv1.2 only) on every custom " +
        "origin and VPC origin, and with a custom (ACM/IAM) certificate a minimumProtocolVersion of TLSv1.2_2021 or newer.",
    enforcementLevel: "mandatory",
    severity: "high",
    validateResource: (args, report) => {
        if (!CLOUDFRONT_TYPES.includes(args.type)) args.notApplicable(`Policy only applies to resources of type ${CLOUDFRONT_TYPES.join(", ")}`);
        const props = args.props;
        if (args.type === TYPES.vpcOrigin) {
            checkOriginTls(block(get(props, "vpcOriginEndpointConfig")), "vpcOriginEndpointConfig", report);
            return;
        }
        const multitenant = args.type === TYPES.multitenantDistribution;
        const checkBehaviour = (behaviour: unknown, where: string): void => {
            const vpp = get(behaviour, "viewerProtocolPolicy");
            if (vpp === UNKNOWN) return;
            if (typeof vpp !== "string" || !SECURE_VIEWER_PROTOCOL_POLICIES.has(vpp)) {
                report(`${where} has viewerProtocolPolicy ${vpp === undefined ? "unset" : JSON.stringify(vpp)}; use "redirect-to-https" or "https-only".`);
            }
        };
        checkBehaviour(block(get(props, "defaultCacheBehavior")), "defaultCacheBehavior");
        const behavioursKey = multitenant ? "cacheBehaviors" : "orderedCacheBehaviors";
        const ordered = items(get(props, behavioursKey));
        if (ordered !== UNKNOWN) {
            ordered.forEach((b, i) => {
                const pattern = get(b, "pathPattern");
                checkBehaviour(b, `${behavioursKey}[${i}]${typeof pattern === "string" ? ` (${pattern})` : ""}`);
            });
        }
        const origins = items(get(props, "origins"));
        if (origins !== UNKNOWN) {
            origins.forEach((o, i) => {
                const id = get(o, multitenant ? "id" : "originId");
                const where = `origins[${i}]${typeof id === "string" ? ` (${id})` : ""}`;
                // S3 origins (OAC) and VPC origins (checked on the VpcOrigin) carry no protocol policy here.
                const custom = multitenant ? items(get(o, "customOriginConfigs")) : [block(get(o, "customOriginConfig"))];
                if (custom === UNKNOWN) return;
                for (const c of custom) if (c !== undefined && c !== null) checkOriginTls(c, where, report);
            });
        }
        const cert = block(get(props, "viewerCertificate"));
        if (isSetString(get(cert, "acmCertificateArn")) || isSetString(get(cert, "iamCertificateId"))) {
            const mpv = get(cert, "minimumProtocolVersion");
            if (mpv !== UNKNOWN && !isModernTlsPolicy(mpv)) {
                report(
                    `viewerCertificate.minimumProtocolVersion is ${mpv === undefined ? "unset (CloudFront defaults to TLSv1)" : JSON.stringify(mpv)}; ` +
                        'use "TLSv1.2_2021" or newer.',
                );
            }
        }
    },
};

// ---------------------------------------------------------------------------------------------
// no-plaintext-secrets-in-outputs
// ---------------------------------------------------------------------------------------------

/** Key text that names a credential wherever it appears (`dbPassword`, `PGPASSWORD`, `apiKey`, `connection_string`). */
export const SENSITIVE_KEY = /password|passwd|passphrase|secret|token|credential|private[_-]?key|api[_-]?key|connection[_-]?string|conn[_-]?str/i;
/**
 * Short names of credentials that count only as the last word of the key, i.e. when the key names
 * the credential itself (`dbPwd`, `auth`, `basicAuth`, `sentryDsn`, `DB_PASS`), not a property of it
 * (`authMode`, `passThrough`).
 */
export const SENSITIVE_WORDS: ReadonlySet<string> = new Set(["pwd", "pw", "pass", "auth", "authorization", "creds", "cred", "dsn", "apikey"]);

/** The words of a key: split at `_ - . /`, spaces and camelCase humps, lower-cased. */
export function keyWords(key: string): string[] {
    return key
        .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
        .replace(/([A-Z]+)([A-Z][a-z])/g, "$1 $2")
        .split(/[^A-Za-z0-9]+/)
        .filter((w) => w !== "")
        .map((w) => w.toLowerCase());
}

/**
 * A credential embedded in a value: `scheme://user:password@` (postgres://, redis://:pw@, https://…),
 * or a literal after a password key in text — `password=…` in a query or connection string,
 * `PGPASSWORD=…` in a script, `password: …` in YAML, `"db_password": "…"` in JSON. References
 * (`$VAR`, `${VAR}`, `$(VAR)`, `${{ secrets.X }}`, `{{ env_var(...) }}`, `%VAR%`, `<placeholder>`,
 * `***`), booleans, null and YAML block markers are not credentials.
 */
const URI_CREDENTIAL = /[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*:([^\s/@]+)@/gi;
const KEY_VALUE_CREDENTIAL = /(?:^|[^A-Za-z0-9])[A-Za-z0-9_.-]*?(?:password|passwd|pwd)["']?\s*[:=]\s*["']?([^\s"',;&}\]]*)/gi;
const REFERENCE_VALUE = /^(?:\$\{[^}]*\}?|\$\([^)]*\)?|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*|%[A-Za-z_][A-Za-z0-9_]*%|<[A-Za-z0-9_ .-]*>|\*+|[|>][+-]?|true|false|null|~)$/i;

export function hasEmbeddedCredential(v: string): boolean {
    for (const re of [URI_CREDENTIAL, KEY_VALUE_CREDENTIAL]) {
        for (const m of v.matchAll(re)) {
            const secret = decodeURIComponentSafe(m[1]).trim();
            if (secret !== "" && !REFERENCE_VALUE.test(secret)) return true;
        }
    }
    return false;
}

/** A JSON object or array held in a string (`JSON.stringify(targets)`), or undefined. */
function embeddedJson(v: string): unknown {
    const t = v.trim();
    if (!(t.startsWith("{") && t.endsWith("}")) && !(t.startsWith("[") && t.endsWith("]"))) return undefined;
    try {
        return JSON.parse(t);
    } catch {
        return undefined;
    }
}

function decodeURIComponentSafe(v: string): string {
    try {
        return decodeURIComponent(v);
    } catch {
        return v;
    }
}

/**
 * Keys that name a *reference* to a credential rather than the credential: `dbSecretArn`,
 * `ciTokenSecretName`, `secret_id`, `SECRET_ARN`, `arn`, `name`. Their subtree is not treated as
 * sensitive (nested sensitive keys are still checked).
 */
const CAMEL_REFERENCE_SUFFIX = /(?:Arns?|ARNs?|Ids?|IDs?|Names?)$/;
const SEPARATED_REFERENCE_SUFFIX = /(?:^|[_\-.])(?:arns?|ids?|names?)$/i;

export function isSensitiveKey(key: string): boolean {
    return (SENSITIVE_KEY.test(key) || SENSITIVE_WORDS.has(keyWords(key).pop() ?? "")) && !isReferenceKey(key);
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
 * Paths of plain (non-secret) values that carry a credential: strings/numbers under a sensitive key,
 * and strings anywhere that embed one (`postgres://user:pass@host`). Secret subtrees and unknown
 * values are skipped; booleans, null and "" carry nothing to leak.
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
        // `{name: "DB_PASSWORD", value: "…"}` (ECS/Batch-style environment lists) names the credential in a sibling.
        const named = ["name", "Name", "key", "Key"].map((k) => get(value, k)).find((n): n is string => typeof n === "string");
        const namedSensitive = named !== undefined && isSensitiveKey(named);
        return Object.keys(value).flatMap((k) => {
            const childSensitive = isReferenceKey(k) ? false : sensitive || isSensitiveKey(k) || (namedSensitive && /^value$/i.test(k));
            return plaintextSensitivePaths(get(value, k), allowed, joinPath(path, k), childSensitive);
        });
    }
    if (sensitive && ((typeof value === "string" && value !== "") || typeof value === "number")) return [path];
    if (typeof value === "string") {
        const json = embeddedJson(value);
        if (json !== undefined) return plaintextSensitivePaths(json, [], `${path}(json)`, sensitive).length > 0 ? [path] : [];
        if (hasEmbeddedCredential(value)) return [path];
    }
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
        "Stack outputs (at any depth) under a credential-like key (password, passwd, pwd, secret, token, credentials, " +
        "private key, api key, auth, dsn, connection string, …) or embedding one (scheme://user:password@, password=…) " +
        "must be secrets, and every Secrets Manager SecretVersion's secretString must be marked secret.",
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
// no-plaintext-secrets-in-resources
// ---------------------------------------------------------------------------------------------

/**
 * Environment variables and parameters that AWS shows in plain text to anyone who can describe the
 * resource (lambda:GetFunctionConfiguration, ecs:DescribeTaskDefinition, ssm:GetParameter), whether
 * or not the Pulumi value is a secret. Credentials belong in Secrets Manager (or SecureString) and
 * are referenced by ARN.
 */
function plainEnvironmentProblems(entries: [string, unknown][]): string[] {
    const problems: string[] = [];
    for (const [name, value] of entries) {
        if (value === UNKNOWN || value === undefined || value === null || value === "") continue;
        const text = typeof value === "string" ? value : typeof value === "number" ? String(value) : undefined;
        if (text === undefined) continue;
        // Lambda and ECS pass values through verbatim (no $VAR expansion), so any value under such a name is the credential.
        if (isSensitiveKey(name)) problems.push(`${name} looks like a credential`);
        else if (hasEmbeddedCredential(text)) problems.push(`${name} embeds a credential in its value`);
    }
    return problems;
}

function entriesOf(map: unknown): [string, unknown][] | Unknown {
    if (map === UNKNOWN) return UNKNOWN;
    if (!isObject(map)) return [];
    return Object.keys(map).map((k) => [k, get(map, k)]);
}

const PLAIN_RESOURCE_TYPES: readonly string[] = [TYPES.ssmParameter, TYPES.lambdaFunction, TYPES.ecsTaskDefinition];

const validateNoPlaintextSecretsInResources: ResourceValidation = (args, report) => {
    if (!PLAIN_RESOURCE_TYPES.includes(args.type)) args.notApplicable(`Policy only applies to resources of type ${PLAIN_RESOURCE_TYPES.join(", ")}`);
    const values = "Values are never echoed here.";
    if (args.type === TYPES.ssmParameter) {
        const type = get(args.props, "type");
        if (type === UNKNOWN || type === "SecureString") return;
        const name = get(args.props, "name");
        // Any segment counts (`/dbt/prod/password/value`, `/dbt/secrets/prod`) unless the leaf names a reference (`…-arn`).
        const segments = typeof name === "string" ? name.split("/").filter((x) => x !== "") : [];
        const leaf = segments[segments.length - 1];
        if (leaf !== undefined && !isReferenceKey(leaf) && segments.some(isSensitiveKey)) {
            report(`SSM parameter ${name} is of type ${JSON.stringify(type ?? "String")} but its name says it holds a credential; use type SecureString (or Secrets Manager).`);
            return;
        }
        for (const field of ["value", "insecureValue"]) {
            const v = get(args.props, field);
            if (typeof v === "string" && hasEmbeddedCredential(v)) {
                report(`SSM parameter ${typeof name === "string" ? name : args.name} (${field}) embeds a credential in a ${JSON.stringify(type ?? "String")} parameter; use type SecureString. ${values}`);
            }
        }
        return;
    }
    if (args.type === TYPES.lambdaFunction) {
        const vars = entriesOf(get(block(get(args.props, "environment")), "variables"));
        if (vars === UNKNOWN) return;
        for (const p of plainEnvironmentProblems(vars)) {
            report(`Lambda environment variable ${p}; Lambda shows environment variables in plain text, so read it from Secrets Manager at run time. ${values}`);
        }
        return;
    }
    const raw = toPlain(get(args.props, "containerDefinitions"));
    if (raw === UNKNOWN || typeof raw !== "string") return;
    let containers: unknown;
    try {
        containers = JSON.parse(raw);
    } catch {
        return; // the provider rejects invalid JSON before anything is created
    }
    if (!Array.isArray(containers)) return;
    for (const c of containers) {
        const env = isObject(c) && Array.isArray(c["environment"]) ? c["environment"] : [];
        const entries = env.filter(isObject).map((e): [string, unknown] => [String(e["name"]), e["value"]]);
        const container = isObject(c) && typeof c["name"] === "string" ? c["name"] : "?";
        for (const p of plainEnvironmentProblems(entries)) {
            report(`ECS container ${container} environment ${p}; pass it through "secrets" (valueFrom a Secrets Manager ARN) instead. ${values}`);
        }
    }
};

export const noPlaintextSecretsInResources: ResourceValidationPolicy & { validateResource: ResourceValidation } = {
    name: "no-plaintext-secrets-in-resources",
    description:
        "Credentials never sit where AWS shows them in plain text: no credential-like Lambda environment variable or ECS " +
        "container environment entry (nor one embedding scheme://user:password@), and no SSM parameter other than " +
        "SecureString whose name or value is a credential.",
    enforcementLevel: "mandatory",
    severity: "critical",
    validateResource: validateNoPlaintextSecretsInResources,
};

// ---------------------------------------------------------------------------------------------

export const policies: (ResourceValidationPolicy | StackValidationPolicy)[] = [
    noPublicBuckets,
    noWildcardIam,
    artifactsBucketVersionedEncrypted,
    cloudfrontHttpsOnly,
    noPlaintextSecretsInOutputs,
    trustPoliciesConstrained,
    noUnvettedManagedPolicies,
    noPlaintextSecretsInResources,
];
