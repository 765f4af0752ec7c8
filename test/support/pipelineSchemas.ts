/**
 * Validators for rendered CI files: the publishers' JSON schemas in ../shared/schemas (ajv), and
 * GitHub's own workflow parser. Each schema is compiled once per test run (Azure's is 1.6 MB).
 */
import Ajv, { ValidateFunction } from "ajv";
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { ROOT } from "../../scripts/offline";

const SCHEMAS = path.resolve(ROOT, "..", "shared", "schemas");
const compiled = new Map<string, ValidateFunction>();

function validator(file: string, options: ConstructorParameters<typeof Ajv>[0], extend?: (schema: any) => void): ValidateFunction {
    let v = compiled.get(file);
    if (!v) {
        const schema = JSON.parse(fs.readFileSync(path.join(SCHEMAS, file), "utf8"));
        extend?.(schema);
        // The vendored schemas declare draft-04/07 ids ajv 8 does not bundle; validate by content.
        delete schema.$schema;
        v = new Ajv(options).compile(schema);
        compiled.set(file, v);
    }
    return v;
}

/** Schema errors of a YAML document, as readable lines (empty when valid). */
function schemaErrors(v: ValidateFunction, text: string, yamlSchema: "core" | "failsafe" = "core"): string[] {
    const doc = parse(text, { schema: yamlSchema });
    if (v(doc)) return [];
    return (v.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
}

export function bitbucketSchemaErrors(text: string): string[] {
    return schemaErrors(validator("bitbucket-pipelines.schema.json", { strict: false, allErrors: true }), text);
}

/**
 * The published schema lists Microsoft's built-in tasks only; the AWS Toolkit's AWSShellScript@1
 * (what our AWS steps use) is added with its documented inputs, closed like the built-in ones.
 */
function addAwsToolkitTask(schema: any): void {
    const task = schema.definitions.task;
    task.properties.task.anyOf.push({ description: "AWS Shell Script (AWS Toolkit)", ignoreCase: "value", enum: ["AWSShellScript@1"] });
    task.anyOf.push({
        properties: {
            task: { pattern: "^AWSShellScript@1$" },
            inputs: {
                type: "object",
                properties: Object.fromEntries(
                    ["awsCredentials", "regionName", "arguments", "filePath", "inlineScript", "disableAutoCwd", "workingDirectory", "failOnStandardError"].map((k) => [k, { type: "string" }]),
                ),
                additionalProperties: false,
                required: ["scriptType"],
            },
        },
        required: ["task", "inputs"],
    });
    task.anyOf[task.anyOf.length - 1].properties.inputs.properties.scriptType = { enum: ["inline", "filePath"] };
}

/** Azure's schema types every scalar as a string (as Azure's own YAML reader does): parse with the failsafe schema. */
export function azureSchemaErrors(text: string): string[] {
    return schemaErrors(validator("azure-pipelines.schema.json", { strict: false, allErrors: true, unicodeRegExp: false }, addAwsToolkitTask), text, "failsafe");
}

export function githubSchemaErrors(text: string): string[] {
    return schemaErrors(validator("github-workflow.schema.json", { strict: false, allErrors: true }), text);
}

/** Errors GitHub's workflow parser reports (parse and conversion), as GitHub would show them. */
export async function githubParserErrors(name: string, text: string): Promise<string[]> {
    // ESM-only, and it imports JSON without an import attribute, which plain Node refuses:
    // load it through tsx's ESM hooks (registered once, scoped to this import).
    const wp: any = await workflowParser();
    const res = wp.parseWorkflow({ name, content: text }, new wp.NoOperationTraceWriter());
    if (res.value) await wp.convertWorkflowTemplate(res.context, res.value);
    return res.context.errors.getErrors().map((e: any) => String(e.message));
}

let parser: Promise<any> | undefined;
function workflowParser(): Promise<any> {
    // Mocha runs with tsx's ESM hooks (.mocharc.json node-option import=tsx), which resolve the JSON import.
    parser ??= import("@actions/workflow-parser");
    return parser;
}
