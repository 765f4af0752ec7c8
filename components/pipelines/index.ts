/**
 * Pipeline definitions: one model, three renderers. `renderPipelineFiles` returns every file a
 * dbt repository needs, keyed by path relative to its root.
 */
import type { CiSystem } from "../config/stack";
import { renderAzure } from "./azure";
import { renderBitbucket } from "./bitbucket";
import { renderGithub } from "./github";
import { LOCAL_LOOP_FILE, localLoopContext, renderLocalLoop } from "./localLoop";
import { DRIVER_PATH, DRIVER_SCRIPT } from "./runner";
import { inProject, PipelineContext, PipelineModel, pipelineModel, PROFILES_DIR } from "./model";

export * from "./model";
export { azureNames } from "./azure";
export { githubReference } from "./github";
// Postgres's pipeline macros live with its warehouse (the contract hands them to the jobs); the library keeps exporting them here.
export { DROP_SCHEMA_MACRO, dropSchemaMacro, RUN_MARKER, SCHEMA_OWNERSHIP_MACRO, schemaOwnershipMacro } from "../warehouse/postgres/macros";
export * from "./versions";
export { DRIVER_PATH, DRIVER_SCRIPT, driverLine } from "./runner";
export { LOCAL_LOOP_FILE, localLoopContext, localLoopProblems, renderLocalLoop } from "./localLoop";

const RENDERERS: Record<CiSystem, (m: PipelineModel) => Record<string, string>> = {
    bitbucket: renderBitbucket,
    github: renderGithub,
    "azure-devops": renderAzure,
};

/** The rendered files of a stack and the model they came from. */
export interface RenderedPipelines {
    model: PipelineModel;
    /** Path (relative to the dbt repository root) → content. */
    files: Record<string, string>;
}

/**
 * Renders the CI files for `ctx.system` (at the repository root), and, inside the dbt project
 * (dbt.projectDir), the warehouse's macros the jobs call and (outside Azure, which uses a secure
 * file) profiles.yml.
 */
export function renderPipelineFiles(ctx: PipelineContext, profilesYaml: string): RenderedPipelines {
    const model = pipelineModel(ctx);
    const files: Record<string, string> = { ...RENDERERS[ctx.system](model) };
    const prs = ctx.warehouse.pullRequestSchemas;
    if (model.jobs.some((j) => j.id === "pull-request")) {
        // The PR-schema reset and cleanup, and whatever the warehouse needs to create those schemas.
        files[inProject(ctx, `macros/${prs.dropMacroName}.sql`)] = prs.dropMacro;
        if (prs.createMacro) files[inProject(ctx, `macros/${prs.createMacro.name}.sql`)] = prs.createMacro.source;
    }
    // The deploy job's check (if the warehouse has one) runs before it builds.
    const check = ctx.warehouse.deployCheck;
    if (check) files[inProject(ctx, `macros/${check.macroName}.sql`)] = check.macro;
    // The PR job runs freshness, clone and build in one dbt process (runner.ts).
    if (model.jobs.some((j) => j.id === "pull-request")) files[inProject(ctx, DRIVER_PATH)] = DRIVER_SCRIPT;
    if (ctx.system !== "azure-devops") files[inProject(ctx, `${PROFILES_DIR}/profiles.yml`)] = profilesYaml;
    // The developers' local loop, at the repository root (its DBT_PROJECT_DIR points into the project).
    const loop = localLoopContext(ctx);
    if (loop) files[LOCAL_LOOP_FILE] = renderLocalLoop(loop);
    return { model, files };
}
