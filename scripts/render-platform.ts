/**
 * `npm run render:platform -- --system github|bitbucket|azure-devops --backend s3|pulumi-cloud [--out <dir>] …`:
 * writes the platform repository's own CI files (preview on pull requests, promotion on main,
 * scheduled drift audit, the scheduled PR-schema janitor of each stack with scheduled runs) at the repository root, or under --out. Stacks come from the Pulumi.<stack>.yaml files in promotion order.
 *   s3:           --bucket <state bucket> --region <region> --preview-role <arn> --deploy-role <arn>
 *                 [--azure-preview-connection <name> --azure-deploy-connection <name>]
 *   pulumi-cloud: --organization <org>
 */
import * as fs from "fs";
import * as path from "path";
import { AuditWarehouseKind, PlatformBackend, PlatformPipelineArgs, renderPlatformAzure, renderPlatformBitbucket, renderPlatformGithub } from "../components/pipelines/platformRepo";
import { argValue } from "./access";
import { parseStackConfig } from "../components/config";
import { ROOT, stackConfig } from "./offline";

/** The promotion order of the program's stacks. */
export const PROMOTION_ORDER = ["dev", "sandbox", "staging", "prod"];

export function platformArgs(argv: string[]): PlatformPipelineArgs {
    const need = (flag: string) => {
        const v = argValue(argv, flag);
        if (!v) throw new Error(`${flag} is required`);
        return v;
    };
    const kind = argValue(argv, "--backend") ?? "s3";
    let backend: PlatformBackend;
    if (kind === "s3") {
        const preview = argValue(argv, "--azure-preview-connection");
        const deploy = argValue(argv, "--azure-deploy-connection");
        backend = {
            kind,
            bucket: need("--bucket"),
            region: need("--region"),
            previewRoleArn: need("--preview-role"),
            deployRoleArn: need("--deploy-role"),
            ...(preview && deploy ? { azureServiceConnections: { preview, deploy } } : {}),
        };
    } else if (kind === "pulumi-cloud") {
        backend = { kind, organization: need("--organization") };
    } else throw new Error(`--backend ${kind}: expected s3 or pulumi-cloud`);
    const present = fs.readdirSync(ROOT).filter((f) => /^Pulumi\.[a-z0-9-]+\.yaml$/.test(f)).map((f) => f.slice("Pulumi.".length, -".yaml".length));
    const stacks = [...PROMOTION_ORDER.filter((s) => present.includes(s)), ...present.filter((s) => !PROMOTION_ORDER.includes(s)).sort()];
    // The PR-schema janitor runs for every stack with scheduled runs, at its scheduledRuns.janitor.schedule.
    const janitor = stacks.flatMap((stack) => {
        const c = parseStackConfig(stack, stackConfig(stack));
        return c.scheduledRuns ? [{ stack, ciSystem: c.ci.system, cron: c.scheduledRuns.janitor.schedule }] : [];
    });
    // The audit job's login and collector depend on each stack's warehouse kind.
    const warehouseKinds = Object.fromEntries(stacks.map((s) => [s, parseStackConfig(s, stackConfig(s)).warehouse.kind as AuditWarehouseKind]));
    return { stacks, warehouseKinds, mainBranch: argValue(argv, "--main-branch") ?? "main", backend, auditCron: argValue(argv, "--audit-cron") ?? "17 5 * * *", pulumiVersion: argValue(argv, "--pulumi-version") ?? "3.248.0", nodeVersion: "20", janitor };
}

function main(argv: string[]): void {
    const system = argValue(argv, "--system");
    // By default the files land where each CI system reads them, at the root of this (the platform) repository.
    const out = path.resolve(argValue(argv, "--out") ?? ROOT);
    const renderers = { github: renderPlatformGithub, bitbucket: renderPlatformBitbucket, "azure-devops": renderPlatformAzure } as const;
    if (!system || !(system in renderers)) throw new Error("usage: npm run render:platform -- --system github|bitbucket|azure-devops --backend s3|pulumi-cloud …");
    const files = renderers[system as keyof typeof renderers](platformArgs(argv));
    for (const [name, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(out, name)), { recursive: true });
        fs.writeFileSync(path.join(out, name), text);
        console.log(`wrote ${path.relative(process.cwd(), path.join(out, name))}`);
    }
}

if (require.main === module) {
    try {
        main(process.argv.slice(2));
    } catch (err) {
        console.error(err instanceof Error ? err.message : String(err));
        process.exit(1);
    }
}
