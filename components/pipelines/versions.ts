/**
 * Tool versions the rendered pipelines install by default. They match test/dbt/requirements.txt,
 * which the end-to-end tests install: CI then runs exactly what was tested (a test checks they agree).
 */
export const DBT_CORE_VERSION = "1.11.16";
export const DBT_POSTGRES_VERSION = "1.11.0";
export const AWSCLI_VERSION = "1.46.2";
export const PYTHON_VERSION = "3.11";

/**
 * Third-party GitHub actions, pinned by full commit SHA (a tag can be moved; a commit cannot).
 * The renderer writes `uses: <repo>@<sha> # <tag>` so a reader (and Dependabot) sees the release.
 * Each SHA ↔ tag pair was cross-checked in several independent public workflows.
 */
export const GITHUB_ACTION_PINS = {
    checkout: { repo: "actions/checkout", sha: "11bd71901bbe5b1630ceea73d27597364c9af683", tag: "v4.2.2" },
    setupPython: { repo: "actions/setup-python", sha: "a26af69be951a213d495a4c3e4e4022e16d87065", tag: "v5.6.0" },
    awsCredentials: { repo: "aws-actions/configure-aws-credentials", sha: "e3dd6a429d7300a6a4c196c26e071d42e0343502", tag: "v4.0.2" },
    /** Seed 002: the warehouse's credential secret (key-pair targets) read with the job's role. */
    secretsManager: { repo: "aws-actions/aws-secretsmanager-get-secrets", sha: "a9a7eb4e2f2871d30dc5b892576fde60a2ecc802", tag: "v2.0.10" },
    cache: { repo: "actions/cache", sha: "5a3ec84eff668545956fd18022155c47e93e2684", tag: "v4.2.3" },
} as const;
export type GithubAction = keyof typeof GITHUB_ACTION_PINS;

/** Further actions only the platform repository's own workflows use; pinned the same way (SHA ↔ tag cross-checked). */
export const PLATFORM_ACTION_PINS = {
    setupNode: { repo: "actions/setup-node", sha: "49933ea5288caeca8642d1e84afbd3f7d6820020", tag: "v4.4.0" },
    pulumi: { repo: "pulumi/actions", sha: "8e5e406f4007fca908480587cb9893c07090f58d", tag: "v7.0.0" },
} as const;

/** The Bitbucket build image, pinned by digest: python:<PYTHON_VERSION>-slim as published on Docker Hub. */
export const BITBUCKET_IMAGE = `python:${PYTHON_VERSION}-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7`;

/** A pinned action: commit SHA plus the tag it was released as (for the comment). */
export interface ActionPin {
    /** 40-hex commit SHA. */
    sha: string;
    /** Release tag the SHA belongs to, e.g. v4.2.2 (rendered as a comment). */
    tag: string;
}

/** Overrides of the default pins (ci.pins in the stack config). */
export interface PinOverrides {
    /** Per action: another commit and its tag. */
    actions?: Partial<Record<GithubAction, ActionPin>>;
    /** Bitbucket image as `name[:tag]@sha256:<64 hex>`. */
    bitbucketImage?: string;
}

/** The pins a rendering uses: defaults with the overrides applied. */
export interface Pins {
    actions: Record<GithubAction, { repo: string; sha: string; tag: string }>;
    bitbucketImage: string;
}

const SHA = /^[0-9a-f]{40}$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const IMAGE = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$/;

/** Problems with pin overrides, each naming the field (under `at`); empty when they are usable. */
export function pinProblems(o: PinOverrides | undefined, at = "pins"): string[] {
    const problems: string[] = [];
    if (o === undefined) return problems;
    for (const [name, pin] of Object.entries(o.actions ?? {})) {
        if (!(name in GITHUB_ACTION_PINS)) {
            problems.push(`${at}.actions.${name}: unknown action (expected one of ${Object.keys(GITHUB_ACTION_PINS).join(", ")})`);
            continue;
        }
        if (typeof pin?.sha !== "string" || !SHA.test(pin.sha)) problems.push(`${at}.actions.${name}.sha: expected a full commit SHA (40 lowercase hex digits)`);
        if (typeof pin?.tag !== "string" || !TAG.test(pin.tag)) problems.push(`${at}.actions.${name}.tag: expected the release tag of that commit, e.g. v4.2.2`);
    }
    if (o.bitbucketImage !== undefined && (typeof o.bitbucketImage !== "string" || !IMAGE.test(o.bitbucketImage))) {
        problems.push(`${at}.bitbucketImage: expected an image pinned by digest, e.g. python:3.11-slim@sha256:<64 hex digits>`);
    }
    return problems;
}

/** Defaults with `o` applied; throws naming each bad field. */
export function resolvePins(o?: PinOverrides): Pins {
    const problems = pinProblems(o);
    if (problems.length > 0) throw new Error(`invalid pins:\n  - ${problems.join("\n  - ")}`);
    const actions = Object.fromEntries(
        Object.entries(GITHUB_ACTION_PINS).map(([k, d]) => [k, { repo: d.repo, ...(o?.actions?.[k as GithubAction] ?? { sha: d.sha, tag: d.tag }) }]),
    ) as Pins["actions"];
    return { actions, bitbucketImage: o?.bitbucketImage ?? BITBUCKET_IMAGE };
}
