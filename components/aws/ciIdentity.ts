/**
 * Keyless AWS access for dbt CI/CD: an IAM OIDC identity provider for the CI system and one
 * least-privilege role per duty (pull-request CI, deploy, scheduled runs). No access keys exist;
 * each pipeline exchanges its short-lived OIDC token for role credentials with
 * sts:AssumeRoleWithWebIdentity, and the role's trust policy pins the token's audience and subject.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { CiSystem } from "../config/stack";

/** GitHub Actions repository whose workflows assume the roles. */
export interface GithubCiArgs {
    /** Repository as `<owner>/<repo>`. */
    repository: string;
    /** Branch whose pushes deploy (default main); unused when `deployEnvironment` is set. */
    mainBranch?: string;
    /** GitHub environment of the deploy job; when set, only jobs in that environment can deploy. */
    deployEnvironment?: string;
}

/** Bitbucket Pipelines repository whose steps assume the roles (UUIDs with or without braces). */
export interface BitbucketCiArgs {
    /** Workspace ID (slug) as in the identity provider URL. */
    workspace: string;
    /** Workspace UUID: the audience is `ari:cloud:bitbucket::workspace/<uuid>`. */
    workspaceUuid: string;
    /** Repository UUID: the first part of every token subject. */
    repositoryUuid: string;
    /** Deployment environment UUID of the deploy step; without it any step of the repository can deploy. */
    deploymentEnvironmentUuid?: string;
}

/** Azure DevOps project whose service connections (workload identity federation) assume the roles. */
export interface AzureDevopsCiArgs {
    /** Organization ID (a GUID): the issuer is `https://vstoken.dev.azure.com/<id>`. */
    organizationId: string;
    /** Organization name as in `dev.azure.com/<organization>`. */
    organization: string;
    /** Project name. */
    project: string;
    /** Service connection used by pull-request validation pipelines. */
    serviceConnection: string;
    /** Service connection used by deploy stages (default `serviceConnection`, which lets PR pipelines deploy). */
    deployServiceConnection?: string;
}

/** Secrets Manager secrets holding dbt target credentials, per duty. */
export interface CiCredentialSecretArns {
    /** Credentials of the CI target, readable by the pull-request role. */
    ci?: pulumi.Input<string>;
    /** Credentials of the deploy target, readable by the deploy role. */
    deploy?: pulumi.Input<string>;
    /** Credentials of the scheduler target; setting it creates the scheduler role. */
    scheduler?: pulumi.Input<string>;
}

/** Arguments of CiIdentity. Names decide the trust policies and are validated before anything registers. */
export interface CiIdentityArgs {
    /** CI system that runs the pipelines; its block below is required. */
    system: CiSystem;
    /** GitHub Actions settings (system github). */
    github?: GithubCiArgs;
    /** Bitbucket Pipelines settings (system bitbucket). */
    bitbucket?: BitbucketCiArgs;
    /** Azure DevOps settings (system azure-devops). */
    azureDevops?: AzureDevopsCiArgs;
    /** Existing account-wide OIDC provider for the issuer; otherwise one is created (one per issuer per account). */
    oidcProviderArn?: pulumi.Input<string>;
    /** ARN of the artifacts bucket (`arn:aws:s3:::<bucket>`). */
    artifactsBucketArn: pulumi.Input<string>;
    /** Key prefix of dbt artifacts (manifest.json etc.) in the bucket (default `artifacts/`). */
    artifactsPrefix?: string;
    /** Key prefix of the dbt docs site in the bucket (default `docs/`). */
    docsPrefix?: string;
    /** CloudFront distribution serving the docs; the deploy role may invalidate exactly this one. */
    distributionArn?: pulumi.Input<string>;
    /** Key prefix of the pull requests' docs previews, under docsPrefix (e.g. `docs/pr/`): the PR role may write only there; omitted: no previews. */
    docsPreviewPrefix?: string;
    /**
     * The PR pipeline removes a closed pull request's preview itself (GitHub's `pull_request: closed`): the PR role
     * may also list docsPreviewPrefix and delete objects under it (delete markers: the bucket is versioned and
     * DeleteObjectVersion is not granted). Needs docsPreviewPrefix; default false.
     */
    docsPreviewCleanup?: boolean;
    /** Secrets each duty may read, one secret per duty. */
    credentialSecretArns: CiCredentialSecretArns;
    /** Customer managed KMS key of the secrets and/or the bucket (a key ARN, not an alias). */
    kmsKeyArn?: pulumi.Input<string>;
    /** Maximum session duration of the roles in seconds (default 3600, at most 43200). */
    maxSessionDuration?: number;
    /** Scheduled runs (ScheduledRuns): the deploy role also publishes the project and pushes the runner image. */
    scheduledRuns?: CiScheduledRunsArgs;
}

/** What the deploy job's release steps write for ScheduledRuns. */
export interface CiScheduledRunsArgs {
    /** Key prefix of the published projects (ScheduledRuns.projectPrefix, e.g. `projects/`). */
    projectPrefix: string;
    /** ARN of the runner's ECR repository (ScheduledRuns.repository.arn): push only there. */
    repositoryArn: pulumi.Input<string>;
}

/** ECR actions `docker push` and the release's "tag exists?" check need, on one repository. */
export const ECR_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
];

/** One IAM policy statement as built here; values may be outputs until serialised. */
export interface CiPolicyStatement {
    Sid: string;
    Effect: "Allow";
    Principal?: { Federated: pulumi.Input<string> } | { Service: string };
    Action: string | string[];
    Resource?: pulumi.Input<string>[];
    Condition?: Record<string, Record<string, pulumi.Input<string> | pulumi.Input<string>[]>>;
}

/** An IAM policy document as built here. */
export interface CiPolicyDocument {
    Version: "2012-10-17";
    Statement: CiPolicyStatement[];
}

/** How a role's trust policy matches the token subject. */
export interface CiSubjectMatch {
    /** IAM condition operator: StringEquals for exact subjects, StringLike when the subject ends in a per-run id. */
    operator: "StringEquals" | "StringLike";
    /** Subject value or pattern. */
    value: string;
}

/** Role ARNs per duty. */
export interface CiRoleArns {
    pullRequest: pulumi.Output<string>;
    deploy: pulumi.Output<string>;
    scheduler?: pulumi.Output<string>;
}

/** Roles per duty. */
export interface CiRoles {
    pullRequest: aws.iam.Role;
    deploy: aws.iam.Role;
    scheduler?: aws.iam.Role;
}

const ECS_TASKS = "ecs-tasks.amazonaws.com";
const WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity";

/** OIDC provider and per-duty roles (pull request, deploy, scheduler) for dbt CI/CD on AWS. */
export class CiIdentity extends pulumi.ComponentResource {
    /** Throws the error the constructor would, without registering anything. */
    public static validate(name: string, args: CiIdentityArgs): void {
        normalise(name, args);
    }

    /** ARN of the OIDC provider the roles trust (given or created). */
    public readonly oidcProviderArn: pulumi.Output<string>;
    /** Token issuer URL of the CI system. */
    public readonly issuerUrl: string;
    /** Audience (`aud`) the roles require. */
    public readonly audience: string;
    /** Subject (`sub`) match per OIDC-trusted duty. */
    public readonly subjects: { pullRequest: CiSubjectMatch; deploy: CiSubjectMatch };
    /** Role ARNs per duty; `scheduler` only with a scheduler secret. */
    public readonly roleArns: CiRoleArns;
    /** Roles per duty. */
    public readonly roles: CiRoles;

    constructor(name: string, args: CiIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validate before super(): a bad argument registers nothing, not even this component.
        const m = normalise(name, args);
        super("dbt-platform:aws:CiIdentity", name, {}, opts);
        this.issuerUrl = m.issuerUrl;
        this.audience = m.audience;
        this.subjects = m.subjects;
        m.warnings.forEach((w) => pulumi.log.warn(`CiIdentity ${name}: ${w}`, this));

        this.oidcProviderArn = args.oidcProviderArn
            ? pulumi.output(args.oidcProviderArn)
            : new aws.iam.OpenIdConnectProvider(
                  `${name}-oidc`,
                  // No thumbprints: IAM validates these issuers against its own trusted CAs.
                  { url: m.issuerUrl, clientIdLists: [m.audience] },
                  { parent: this },
              ).arn;

        const bucket = args.artifactsBucketArn;
        const objects = (prefix: string) => pulumi.interpolate`${bucket}/${prefix}*`;
        const secrets = args.credentialSecretArns;
        const kms = args.kmsKeyArn;

        const pullRequest = this.role(name, "pull-request", "dbt pull-request CI: reads production artifacts and CI credentials", m,
            webIdentityTrust(this.oidcProviderArn, m.keyPrefix, m.audience, m.subjects.pullRequest),
            permissions([
                { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [objects(m.artifactsPrefix)] },
                listStatement(bucket, m.docsPreviewCleanup && m.docsPreviewPrefix ? [m.artifactsPrefix, m.docsPreviewPrefix] : [m.artifactsPrefix]),
                // Docs previews: put only, under the previews prefix. IAM cannot narrow it to the job's own PR (no OIDC
                // claim carries the PR number), so a PR job could overwrite another PR's preview, never the production docs.
                ...(m.docsPreviewPrefix ? [{ Sid: "PublishDocsPreviews", Effect: "Allow" as const, Action: ["s3:PutObject"], Resource: [objects(m.docsPreviewPrefix)] }] : []),
                // Removal at close: the same prefix, so no more reach than the put above (which can already overwrite any preview).
                ...(m.docsPreviewCleanup && m.docsPreviewPrefix ? [{ Sid: "RemoveDocsPreviews", Effect: "Allow" as const, Action: ["s3:DeleteObject"], Resource: [objects(m.docsPreviewPrefix)] }] : []),
                ...secretStatement("ReadCiCredentials", secrets.ci),
                ...kmsStatement(kms, m.docsPreviewPrefix ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"]),
            ]),
        );
        const deploy = this.role(name, "deploy", "dbt deploy: publishes artifacts and docs, reads deploy credentials", m,
            webIdentityTrust(this.oidcProviderArn, m.keyPrefix, m.audience, m.subjects.deploy),
            permissions([
                {
                    Sid: "WriteArtifactsAndDocs",
                    Effect: "Allow",
                    Action: ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    Resource: [objects(m.artifactsPrefix), objects(m.docsPrefix)],
                },
                listStatement(bucket, [m.artifactsPrefix, m.docsPrefix]),
                ...(args.distributionArn
                    ? [{ Sid: "InvalidateDocs", Effect: "Allow" as const, Action: ["cloudfront:CreateInvalidation"], Resource: [args.distributionArn] }]
                    : []),
                ...secretStatement("ReadDeployCredentials", secrets.deploy),
                ...kmsStatement(kms, ["kms:Decrypt", "kms:GenerateDataKey"]),
                ...releaseStatements(bucket, args.scheduledRuns),
            ]),
        );
        const scheduler = secrets.scheduler
            ? this.role(name, "scheduler", "dbt scheduled runs on ECS: reads artifacts and scheduler credentials", m,
                  serviceTrust(ECS_TASKS),
                  permissions([
                      { Sid: "ReadArtifacts", Effect: "Allow", Action: ["s3:GetObject"], Resource: [objects(m.artifactsPrefix)] },
                      ...secretStatement("ReadSchedulerCredentials", secrets.scheduler),
                      ...kmsStatement(kms, ["kms:Decrypt"]),
                  ]),
              )
            : undefined;

        this.roles = { pullRequest, deploy, ...(scheduler ? { scheduler } : {}) };
        this.roleArns = { pullRequest: pullRequest.arn, deploy: deploy.arn, ...(scheduler ? { scheduler: scheduler.arn } : {}) };
        this.registerOutputs({ oidcProviderArn: this.oidcProviderArn, roleArns: this.roleArns });
    }

    /** A role with its trust policy and one inline policy, both children of this component. */
    private role(name: string, key: string, description: string, m: Model, trust: CiPolicyDocument, policy: CiPolicyDocument): aws.iam.Role {
        const role = new aws.iam.Role(
            `${name}-${key}`,
            { description, assumeRolePolicy: serialise(name, `${key} trust policy`, trust), maxSessionDuration: m.maxSessionDuration },
            { parent: this },
        );
        new aws.iam.RolePolicy(
            `${name}-${key}-policy`,
            { role: role.id, policy: serialise(name, `${key} policy`, policy) },
            { parent: this },
        );
        return role;
    }
}

function webIdentityTrust(providerArn: pulumi.Input<string>, keyPrefix: string, audience: string, subject: CiSubjectMatch): CiPolicyDocument {
    const aud = { [`${keyPrefix}:aud`]: audience };
    const sub = { [`${keyPrefix}:sub`]: subject.value };
    return {
        Version: "2012-10-17",
        Statement: [
            {
                Sid: "CiOidc",
                Effect: "Allow",
                Principal: { Federated: providerArn },
                Action: WEB_IDENTITY,
                Condition:
                    subject.operator === "StringEquals"
                        ? { StringEquals: { ...aud, ...sub } }
                        : { StringEquals: aud, StringLike: sub },
            },
        ],
    };
}

function serviceTrust(service: string): CiPolicyDocument {
    return {
        Version: "2012-10-17",
        Statement: [{ Sid: "Service", Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
    };
}

function permissions(statements: CiPolicyStatement[]): CiPolicyDocument {
    return { Version: "2012-10-17", Statement: statements };
}

/** ListBucket limited to the given prefixes: lets `aws s3 cp/sync` tell "missing" from "denied". */
function listStatement(bucket: pulumi.Input<string>, prefixes: string[]): CiPolicyStatement {
    return {
        Sid: "ListPrefixes",
        Effect: "Allow",
        Action: ["s3:ListBucket"],
        Resource: [bucket],
        Condition: { StringLike: { "s3:prefix": prefixes.map((p) => `${p}*`) } },
    };
}

function secretStatement(sid: string, arn: pulumi.Input<string> | undefined): CiPolicyStatement[] {
    // GetSecretValue only: secret ids are exact names/ARNs, so no ListSecrets or DescribeSecret.
    return arn ? [{ Sid: sid, Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [arn] }] : [];
}

/** The release steps: the project tarballs, manifests and pointer under one prefix, and a push to one repository. */
function releaseStatements(bucket: pulumi.Input<string>, release: CiScheduledRunsArgs | undefined): CiPolicyStatement[] {
    if (!release) return [];
    return [
        { Sid: "PublishProjects", Effect: "Allow", Action: ["s3:PutObject"], Resource: [pulumi.interpolate`${bucket}/${release.projectPrefix}*`] },
        // GetAuthorizationToken has no resource-level permissions: AWS requires "*" for it (its own statement, nothing else on "*").
        { Sid: "EcrLogin", Effect: "Allow", Action: ["ecr:GetAuthorizationToken"], Resource: ["*"] },
        { Sid: "PushRunnerImage", Effect: "Allow", Action: [...ECR_PUSH_ACTIONS], Resource: [release.repositoryArn] },
    ];
}

function kmsStatement(keyArn: pulumi.Input<string> | undefined, actions: string[]): CiPolicyStatement[] {
    if (!keyArn) return [];
    return [
        {
            Sid: "UseKeyViaS3AndSecretsManager",
            Effect: "Allow",
            Action: actions,
            Resource: [keyArn],
            // Only through the services that hold the data, never direct kms:Decrypt calls on arbitrary ciphertext.
            Condition: { StringLike: { "kms:ViaService": ["s3.*.amazonaws.com", "secretsmanager.*.amazonaws.com"] } },
        },
    ];
}

/**
 * JSON of a policy document. Inputs resolve first, then the result is checked once more: values that
 * were outputs at construction (an ARN from another resource) could not be validated before super().
 */
function serialise(name: string, what: string, doc: CiPolicyDocument): pulumi.Output<string> {
    return pulumi.jsonStringify(doc).apply((json) => {
        const problems = leastPrivilegeProblems(JSON.parse(json));
        if (problems.length > 0) {
            throw new Error(`CiIdentity ${name}: ${what} is not least-privilege:\n  - ${problems.join("\n  - ")}`);
        }
        return json;
    });
}

/**
 * Wildcards in a policy document: any wildcard action, `Resource: "*"`, and any wildcard in a resource
 * ARN except the trailing `/*` of an S3 key prefix below a bucket (`arn:aws:s3:::<bucket>/<prefix>/*`).
 * Values that are not ARNs are left to IAM, which rejects them; values not yet known are skipped.
 */
export function leastPrivilegeProblems(doc: { Statement: { Sid?: string; Action: string | string[]; Resource?: unknown }[] }): string[] {
    const problems: string[] = [];
    for (const s of doc.Statement) {
        const where = `statement ${s.Sid ?? "?"}`;
        for (const a of ([] as unknown[]).concat(s.Action)) {
            if (typeof a !== "string" || a.includes("*") || a.includes("?")) problems.push(`${where}: wildcard action ${JSON.stringify(a)}`);
        }
        const actions = ([] as unknown[]).concat(s.Action);
        // The one exception: ecr:GetAuthorizationToken alone, which AWS grants only on "*".
        const ecrToken = actions.length > 0 && actions.every((a) => a === "ecr:GetAuthorizationToken");
        for (const r of ([] as unknown[]).concat(s.Resource ?? [])) {
            if (typeof r !== "string") continue;
            if (ecrToken && r === "*") continue;
            const s3KeyPrefix = /^arn:aws[a-z-]*:s3:::[^/*?]+\/[^*?]+\/\*$/.test(r);
            if (r === "*" || (r.startsWith("arn:") && !s3KeyPrefix && /[*?]/.test(r)) || /[*?]/.test(r.replace(/\/\*$/, ""))) {
                problems.push(`${where}: wildcard resource ${JSON.stringify(r)}`);
            }
        }
    }
    return problems;
}

function prefixesOverlap(a: string, b: string): boolean {
    return a.startsWith(b) || b.startsWith(a);
}

interface Model {
    issuerUrl: string;
    audience: string;
    /** Issuer without https://: IAM's condition-key prefix for the provider. */
    keyPrefix: string;
    subjects: { pullRequest: CiSubjectMatch; deploy: CiSubjectMatch };
    artifactsPrefix: string;
    docsPrefix: string;
    docsPreviewPrefix?: string;
    docsPreviewCleanup: boolean;
    maxSessionDuration: number;
    warnings: string[];
}

const UUID = /^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$/;
const ARN = {
    bucket: /^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    distribution: /^arn:aws[a-z-]*:cloudfront::\d{12}:distribution\/[A-Z0-9]+$/,
    secret: /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/,
    kmsKey: /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
    ecrRepository: /^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository\/[a-z0-9][a-z0-9._\/-]*$/,
    oidcProvider: /^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/(.+)$/,
};

/** Applies defaults, derives issuer/audience/subjects and rejects bad arguments before any registration. */
function normalise(name: string, args: CiIdentityArgs): Model {
    const problems: string[] = [];
    const bad = (field: string, value: unknown, expected: string) =>
        problems.push(`${field} = ${JSON.stringify(value)}: expected ${expected}`);
    const uuid = (field: string, value: string | undefined): string => {
        const match = typeof value === "string" ? UUID.exec(value) : null;
        const balanced = typeof value === "string" && value.startsWith("{") === value.endsWith("}");
        if (!match || !balanced) {
            bad(field, value, "a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e (braces optional)");
            return "";
        }
        return match[1].toLowerCase();
    };
    const text = (field: string, value: unknown, max: number, forbidden: RegExp, what: string) => {
        if (typeof value !== "string" || value.length === 0 || value.length > max || value !== value.trim() || forbidden.test(value)) {
            bad(field, value, what);
        }
    };

    const systems: Record<CiSystem, "github" | "bitbucket" | "azureDevops"> = { github: "github", bitbucket: "bitbucket", "azure-devops": "azureDevops" };
    const blockKey = systems[args.system];
    if (!blockKey) bad("system", args.system, `one of ${Object.keys(systems).join(", ")}`);
    for (const key of Object.values(systems)) {
        if (key === blockKey && !args[key]) problems.push(`${key}: required when system is ${args.system}`);
        if (key !== blockKey && args[key] !== undefined) problems.push(`${key}: given, but system is ${args.system}; remove it`);
    }

    let issuerUrl = "";
    let audience = "";
    let subjects = { pullRequest: { operator: "StringEquals", value: "" }, deploy: { operator: "StringEquals", value: "" } } as Model["subjects"];
    const warnings: string[] = [];

    if (blockKey === "github" && args.github) {
        const g = args.github;
        const repoOk = typeof g.repository === "string" && /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/.test(g.repository)
            && ![".", ".."].includes(g.repository.split("/")[1]);
        if (!repoOk) bad("github.repository", g.repository, "<owner>/<repo>, e.g. acme/dbt-transform");
        const branch = g.mainBranch ?? "main";
        const branchOk = /^[A-Za-z0-9._/-]+$/.test(branch) && !branch.includes("..") && !branch.includes("//")
            && !branch.startsWith("/") && !branch.endsWith("/") && !branch.endsWith(".lock");
        if (!branchOk) bad("github.mainBranch", g.mainBranch, "a branch name such as main (letters, digits, . _ - /)");
        if (g.deployEnvironment !== undefined) {
            text("github.deployEnvironment", g.deployEnvironment, 255, /[\u0000-\u001f*?]/, "a GitHub environment name (1-255 characters, no wildcards)");
        }
        const repo = `repo:${g.repository}`;
        issuerUrl = "https://token.actions.githubusercontent.com";
        audience = "sts.amazonaws.com";
        subjects = {
            pullRequest: { operator: "StringEquals", value: `${repo}:pull_request` },
            deploy: {
                operator: "StringEquals",
                // A job that names an environment gets the environment subject, not the ref subject.
                value: g.deployEnvironment !== undefined ? `${repo}:environment:${g.deployEnvironment}` : `${repo}:ref:refs/heads/${branch}`,
            },
        };
        if (g.deployEnvironment === undefined) {
            warnings.push(`github.deployEnvironment is not set: any job on ${branch}, pull_request_target runs included, can assume the deploy role; give each release stage its own environment`);
        }
    } else if (blockKey === "bitbucket" && args.bitbucket) {
        const b = args.bitbucket;
        if (typeof b.workspace !== "string" || !/^[a-z0-9][a-z0-9_-]{0,61}$/.test(b.workspace)) {
            bad("bitbucket.workspace", b.workspace, "the workspace ID as in the identity provider URL (lower-case letters, digits, - and _)");
        }
        const workspaceUuid = uuid("bitbucket.workspaceUuid", b.workspaceUuid);
        const repositoryUuid = uuid("bitbucket.repositoryUuid", b.repositoryUuid);
        const environmentUuid = b.deploymentEnvironmentUuid !== undefined ? uuid("bitbucket.deploymentEnvironmentUuid", b.deploymentEnvironmentUuid) : undefined;
        issuerUrl = `https://api.bitbucket.org/2.0/workspaces/${b.workspace}/pipelines-config/identity/oidc`;
        audience = `ari:cloud:bitbucket::workspace/${workspaceUuid}`;
        // Subjects: `{repo}:{step}` for plain steps, `{repo}{environment}:{step}` for deployment steps.
        subjects = {
            pullRequest: { operator: "StringLike", value: `{${repositoryUuid}}*` },
            deploy: environmentUuid
                ? { operator: "StringLike", value: `{${repositoryUuid}}{${environmentUuid}}:*` }
                : { operator: "StringLike", value: `{${repositoryUuid}}*` },
        };
        if (!environmentUuid) {
            warnings.push("bitbucket.deploymentEnvironmentUuid is not set: every pipeline step of the repository, pull requests included, can assume the deploy role");
        }
    } else if (blockKey === "azureDevops" && args.azureDevops) {
        const a = args.azureDevops;
        const organizationId = uuid("azureDevops.organizationId", a.organizationId);
        if (typeof a.organization !== "string" || !/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/.test(a.organization)) {
            bad("azureDevops.organization", a.organization, "an organization name (letters, digits and -, as in dev.azure.com/<organization>)");
        }
        text("azureDevops.project", a.project, 64, /[\u0000-\u001f\\/:*?"<>;#${},+=[\]|]|^[_.]|\.$/, "an Azure DevOps project name");
        const connection = /[\u0000-\u001f/*?]/;
        text("azureDevops.serviceConnection", a.serviceConnection, 256, connection, "a service connection name (no / or wildcards)");
        if (a.deployServiceConnection !== undefined) {
            text("azureDevops.deployServiceConnection", a.deployServiceConnection, 256, connection, "a service connection name (no / or wildcards)");
        }
        const deployConnection = a.deployServiceConnection ?? a.serviceConnection;
        const sc = (connectionName: string) => `sc://${a.organization}/${a.project}/${connectionName}`;
        issuerUrl = `https://vstoken.dev.azure.com/${organizationId}`;
        audience = "api://AzureADTokenExchange";
        subjects = {
            pullRequest: { operator: "StringEquals", value: sc(a.serviceConnection) },
            deploy: { operator: "StringEquals", value: sc(deployConnection) },
        };
        if (deployConnection === a.serviceConnection) {
            warnings.push("azureDevops.deployServiceConnection is not set (or equals serviceConnection): pipelines that can use the pull-request service connection can also assume the deploy role");
        }
    }
    const keyPrefix = issuerUrl.replace(/^https:\/\//, "");

    const prefix = (field: string, value: string) => {
        if (!/^(?:[A-Za-z0-9!_.'()-]+\/)+$/.test(value) || value.split("/").some((s) => s === "." || s === "..")) {
            bad(field, value, "an S3 key prefix ending in / such as artifacts/ (no leading /, no wildcards)");
        }
        return value;
    };
    const artifactsPrefix = prefix("artifactsPrefix", args.artifactsPrefix ?? "artifacts/");
    const docsPrefix = prefix("docsPrefix", args.docsPrefix ?? "docs/");
    const docsPreviewPrefix = args.docsPreviewPrefix === undefined ? undefined : prefix("docsPreviewPrefix", args.docsPreviewPrefix);
    if (docsPreviewPrefix !== undefined && (!docsPreviewPrefix.startsWith(docsPrefix) || docsPreviewPrefix === docsPrefix)) {
        bad("docsPreviewPrefix", docsPreviewPrefix, `a prefix strictly under docsPrefix ${docsPrefix} (the PR role must not write the production docs)`);
    }
    const docsPreviewCleanup = args.docsPreviewCleanup ?? false;
    if (typeof docsPreviewCleanup !== "boolean") bad("docsPreviewCleanup", args.docsPreviewCleanup, "true or false");
    if (docsPreviewCleanup && docsPreviewPrefix === undefined) bad("docsPreviewCleanup", args.docsPreviewCleanup, "docsPreviewPrefix as well (there is no preview to remove without it)");

    const maxSessionDuration = args.maxSessionDuration ?? 3600;
    if (!Number.isInteger(maxSessionDuration) || maxSessionDuration < 3600 || maxSessionDuration > 43200) {
        bad("maxSessionDuration", args.maxSessionDuration, "whole seconds from 3600 to 43200");
    }

    // Plain-string ARNs are checked now; outputs are checked when the policy JSON resolves.
    const arn = (field: string, value: pulumi.Input<string> | undefined, pattern: RegExp, what: string) => {
        if (typeof value === "string" && !pattern.test(value)) bad(field, value, what);
    };
    if (args.artifactsBucketArn === undefined) problems.push("artifactsBucketArn: required");
    arn("artifactsBucketArn", args.artifactsBucketArn, ARN.bucket, "a bucket ARN arn:aws:s3:::<bucket> (not a bucket name)");
    arn("distributionArn", args.distributionArn, ARN.distribution, "a CloudFront distribution ARN arn:aws:cloudfront::<account>:distribution/<id>");
    arn("kmsKeyArn", args.kmsKeyArn, ARN.kmsKey, "a KMS key ARN arn:aws:kms:<region>:<account>:key/<id> (IAM policies cannot name a key by alias)");
    if (!args.credentialSecretArns || typeof args.credentialSecretArns !== "object") {
        problems.push("credentialSecretArns: required (an object, possibly empty)");
    } else {
        for (const duty of ["ci", "deploy", "scheduler"] as const) {
            arn(`credentialSecretArns.${duty}`, args.credentialSecretArns[duty], ARN.secret, "a Secrets Manager secret ARN");
        }
    }
    if (args.scheduledRuns !== undefined) {
        prefix("scheduledRuns.projectPrefix", args.scheduledRuns.projectPrefix);
        if (prefixesOverlap(args.scheduledRuns.projectPrefix, artifactsPrefix) || prefixesOverlap(args.scheduledRuns.projectPrefix, docsPrefix)) {
            problems.push(`scheduledRuns.projectPrefix ${args.scheduledRuns.projectPrefix} overlaps artifactsPrefix ${artifactsPrefix} or docsPrefix ${docsPrefix}`);
        }
        arn("scheduledRuns.repositoryArn", args.scheduledRuns.repositoryArn, ARN.ecrRepository, "an ECR repository ARN arn:aws:ecr:<region>:<account>:repository/<name>");
        // ScheduledRuns brings its own execution, task and scheduler roles; a second scheduler role would be unused access.
        if (args.credentialSecretArns?.scheduler !== undefined) problems.push("credentialSecretArns.scheduler: not with scheduledRuns (ScheduledRuns' own roles read the scheduler's secret)");
    }
    if (typeof args.oidcProviderArn === "string") {
        const match = ARN.oidcProvider.exec(args.oidcProviderArn);
        if (!match) {
            bad("oidcProviderArn", args.oidcProviderArn, "an OIDC provider ARN arn:aws:iam::<account>:oidc-provider/<issuer>");
        } else if (keyPrefix && match[1] !== keyPrefix) {
            bad("oidcProviderArn", args.oidcProviderArn, `the provider of ${issuerUrl} (ARN ending in oidc-provider/${keyPrefix})`);
        }
    }

    if (problems.length > 0) {
        throw new Error(`CiIdentity ${name}: invalid arguments:\n  - ${problems.join("\n  - ")}`);
    }
    return { issuerUrl, audience, keyPrefix, subjects, artifactsPrefix, docsPrefix, docsPreviewPrefix, docsPreviewCleanup, maxSessionDuration, warnings };
}
