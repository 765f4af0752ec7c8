/**
 * npm run render -- --stack <stack> [--ci bitbucket|github|azure-devops] [--out <dir>]
 *
 * Evaluates the program offline (Pulumi mocks: no CLI, no cloud) and writes the stack's rendered
 * pipeline files into a dbt repository checkout (or lists them without --out). Values only a
 * deployment knows (bucket suffixes, role ARNs, distribution ids) are the mocks' stand-ins and are
 * listed as such; `pulumi stack output pipelineFiles` has the real ones after `pulumi up`.
 */
import * as fs from "fs";
import * as path from "path";
import { CI_SYSTEMS, CiSystem } from "../components/config/stack";
import { resolve, runProgram, stackConfig } from "./offline";

interface Args {
    stack: string;
    ci?: CiSystem;
    out?: string;
}

function parseArgs(argv: string[]): Args {
    const args: Partial<Args> = {};
    for (let i = 0; i < argv.length; i++) {
        const flag = argv[i];
        const value = argv[i + 1];
        if (!["--stack", "--ci", "--out"].includes(flag)) throw new Error(`unknown argument ${flag}; usage: --stack <stack> [--ci ${CI_SYSTEMS.join("|")}] [--out <dir>]`);
        if (value === undefined || value.startsWith("--")) throw new Error(`${flag} needs a value`);
        i++;
        if (flag === "--stack") args.stack = value;
        else if (flag === "--out") args.out = value;
        else if ((CI_SYSTEMS as readonly string[]).includes(value)) args.ci = value as CiSystem;
        else throw new Error(`--ci ${value}: expected one of ${CI_SYSTEMS.join(", ")}`);
    }
    if (!args.stack) throw new Error("--stack is required (dev, sandbox, staging, prod)");
    return args as Args;
}

/**
 * The stack's config with another CI system: the repository is reshaped to that system's form, and
 * system-specific AWS settings the stack lacks get labelled stand-ins (returned for the report).
 */
export function withCiSystem(config: Record<string, string>, system: CiSystem): { config: Record<string, string>; standIns: string[] } {
    const out = { ...config };
    const standIns: string[] = [];
    const ci = JSON.parse(out["dbt-platform:ci"] ?? "{}");
    const parts = String(ci.repository ?? "").split("/");
    const [owner, repo] = [parts[0], parts[parts.length - 1]];
    ci.repository = system === "azure-devops" ? (parts.length === 3 ? ci.repository : `${owner}/${repo}/${repo}`) : `${owner}/${repo}`;
    ci.system = system;
    out["dbt-platform:ci"] = JSON.stringify(ci);
    const aws = JSON.parse(out["dbt-platform:aws"] ?? "{}");
    if (aws.enabled && system === "azure-devops" && !aws.azureDevops) {
        aws.azureDevops = { organizationId: "00000000-0000-4000-8000-000000000000", serviceConnection: "aws-dbt-platform" };
        standIns.push("aws.azureDevops.organizationId", "aws.azureDevops.serviceConnection");
    }
    if (aws.enabled && system === "bitbucket" && !aws.bitbucket) {
        aws.bitbucket = { workspaceUuid: "{00000000-0000-4000-8000-000000000000}", repositoryUuid: "{00000000-0000-4000-8000-000000000001}" };
        standIns.push("aws.bitbucket.workspaceUuid", "aws.bitbucket.repositoryUuid");
    }
    out["dbt-platform:aws"] = JSON.stringify(aws);
    return { config: out, standIns };
}

async function main(): Promise<void> {
    const args = parseArgs(process.argv.slice(2));
    let config = stackConfig(args.stack);
    let standIns: string[] = [];
    if (args.ci) ({ config, standIns } = withCiSystem(config, args.ci));
    // Offline runs have no secrets: the admin password is not needed to render files.
    const { exports } = await runProgram(args.stack, config);
    const files = (await resolve(exports.pipelineFiles)).value as Record<string, string>;
    const system = exports.ciSystem as unknown as string;
    console.log(`stack ${args.stack}, CI system ${system}: ${Object.keys(files).length} files`);
    if (standIns.length) console.log(`stand-in config for --ci ${args.ci}: ${standIns.join(", ")}`);
    for (const [rel, content] of Object.entries(files)) {
        if (args.out) {
            const dest = path.join(args.out, rel);
            fs.mkdirSync(path.dirname(dest), { recursive: true });
            fs.writeFileSync(dest, content);
            console.log(`  wrote ${dest} (${content.length} bytes)`);
        } else {
            console.log(`  ${rel} (${content.length} bytes)`);
        }
    }
    if (!args.out) console.log("(pass --out <dbt repository checkout> to write them)");
}

if (require.main === module) {
    main().catch((err) => {
        console.error(err instanceof Error ? err.message : err);
        process.exit(1);
    });
}
