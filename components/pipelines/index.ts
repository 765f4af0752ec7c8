/**
 * Pipeline definitions: one model, three renderers. `renderPipelineFiles` returns every file a
 * dbt repository needs, keyed by path relative to its root.
 */
import type { CiSystem } from "../config/stack";
import { renderAzure } from "./azure";
import { renderBitbucket } from "./bitbucket";
import { renderGithub } from "./github";
import { DRIVER_PATH, DRIVER_SCRIPT } from "./runner";
import { dropSchemaMacro, schemaOwnershipMacro } from "./macros";
import { CREATE_SCHEMA_MACRO } from "../warehouse/postgres/warehouse";
import { DROP_SCHEMA_MACRO, inProject, SCHEMA_OWNERSHIP_MACRO, PipelineContext, PipelineModel, pipelineModel, PROFILES_DIR } from "./model";

export * from "./model";
export { azureNames } from "./azure";
export { githubReference } from "./github";
export { dropSchemaMacro, RUN_MARKER, schemaOwnershipMacro } from "./macros";
export * from "./versions";
export { DRIVER_PATH, DRIVER_SCRIPT, driverLine } from "./runner";

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
 * (dbt.projectDir), the cleanup macro and (outside Azure, which uses a secure file) profiles.yml.
 */
export function renderPipelineFiles(ctx: PipelineContext, profilesYaml: string): RenderedPipelines {
    const model = pipelineModel(ctx);
    const files: Record<string, string> = { ...RENDERERS[ctx.system](model) };
    if (model.jobs.some((j) => j.id === "pull-request")) files[inProject(ctx, `macros/${DROP_SCHEMA_MACRO}.sql`)] = dropSchemaMacro(ctx.pullRequestSchemaPrefix);
    // The dev role has no CREATE on the database: CI and developers create their schemas through dbt_platform.create_schema.
    if (model.jobs.some((j) => j.id === "pull-request")) files[inProject(ctx, "macros/dbt_platform_create_schema.sql")] = CREATE_SCHEMA_MACRO;
    // The PR job runs freshness, clone and build in one dbt process (runner.ts).
    if (model.jobs.some((j) => j.id === "pull-request")) files[inProject(ctx, DRIVER_PATH)] = DRIVER_SCRIPT;
    // The deploy job refuses schemas the production role does not own before it builds.
    files[inProject(ctx, `macros/${SCHEMA_OWNERSHIP_MACRO}.sql`)] = schemaOwnershipMacro();
    if (ctx.system !== "azure-devops") files[inProject(ctx, `${PROFILES_DIR}/profiles.yml`)] = profilesYaml;
    return { model, files };
}
