/**
 * Naming rules that the stack config enforces and that other modules must apply identically
 * (the pipeline model checks the pull-request prefix with the same function). No imports: the
 * pipelines import this file, and the config imports the pipelines.
 */

/** Room for the pull-request number (up to 22 digits) in a 63-byte schema name; the drop macro allows no more. */
export const MAX_PR_PREFIX = 41;

/** An S3 bucket name (3-63 lower-case letters, digits, dots and hyphens): the one pattern every bucket check uses. */
export const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Why `prefix` cannot prefix per-pull-request schemas (`<prefix><number>`), or undefined when it can.
 * The one rule for config and pipelines: what the config accepts, the rendered pipelines build.
 */
export function pullRequestPrefixProblem(prefix: string): string | undefined {
    if (!/^[a-z][a-z0-9_]*$/.test(prefix)) return "a schema-name prefix: lower-case letters, digits, underscores, starting with a letter";
    if (prefix.length > MAX_PR_PREFIX || prefix.startsWith("pg_")) {
        return `at most ${MAX_PR_PREFIX} characters, not starting with pg_ (the pull-request number must fit in a 63-byte schema name)`;
    }
    return undefined;
}

/** Git refuses these as branch names (git check-ref-format --branch), and a leading dash reads as an option. */
export function branchProblem(branch: string): string | undefined {
    const ok =
        /^[A-Za-z0-9._/-]{1,200}$/.test(branch) &&
        !branch.startsWith("-") &&
        !branch.endsWith(".") &&
        branch !== "HEAD" &&
        branch.split("/").every((c) => c !== "" && !c.startsWith(".") && !c.endsWith(".lock")) &&
        !branch.includes("..");
    return ok ? undefined : "a git branch name (letters, digits, . _ - /; no .., no component starting with . or ending in .lock, not starting with - or ending in .)";
}

type Segment = (s: string) => boolean;
const notDots: Segment = (s) => !/^\.+$/.test(s);
/** Names Azure DevOps refuses for projects and repositories (Windows device names). */
const notDevice: Segment = (s) => !/^(con|prn|aux|nul|com\d|lpt\d)$/i.test(s);
const SEGMENTS: Record<"bitbucket" | "github" | "azure-devops", { segments: Segment[]; shape: string }> = {
    bitbucket: {
        segments: [(s) => /^[a-z0-9][a-z0-9_-]{0,61}$/.test(s), (s) => /^[A-Za-z0-9._-]{1,100}$/.test(s) && notDots(s)],
        shape: "workspace/repository (workspace ID in lower case; repository slug of letters, digits, . _ -, not . or ..)",
    },
    github: {
        segments: [
            // Owners: letters, digits and inner dashes, at most 39 characters.
            (s) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$/.test(s),
            // GitHub reserves . and .., and strips a .git suffix (the API would name another repository).
            (s) => /^[A-Za-z0-9._-]{1,100}$/.test(s) && notDots(s) && !/\.git$/i.test(s),
        ],
        shape: "owner/repository (owner: letters, digits, inner dashes; repository: letters, digits, . _ -, not . or .., not ending in .git)",
    },
    "azure-devops": {
        segments: [
            (s) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/.test(s),
            // Azure DevOps: no leading _ or ., no trailing . (nor space), at most 64 characters.
            (s) => /^(?![_. ])[A-Za-z0-9._ -]{1,64}$/.test(s) && !/[. ]$/.test(s) && notDevice(s),
            (s) => /^(?![_.])[A-Za-z0-9._-]{1,64}$/.test(s) && !s.endsWith(".") && notDevice(s),
        ],
        shape: "organization/project/repository (project and repository not starting with _ or . nor ending in . or a space, and no device name such as CON)",
    },
};

/** The shape a repository has on `system`, for error messages. */
export function repositoryShape(system: keyof typeof SEGMENTS): string {
    return SEGMENTS[system].shape;
}

/** True when `repository` names a repository on `system` with every segment a valid slug (API paths stay put). */
export function isRepository(system: keyof typeof SEGMENTS, repository: string): boolean {
    const parts = repository.split("/");
    const rules = SEGMENTS[system].segments;
    return parts.length === rules.length && parts.every((p, i) => rules[i](p));
}
