/**
 * Hostile stack configs (issue 11, item 7): every one is rejected by the config module with a
 * problem at the key that is wrong, and the program given it registers zero resources. Values
 * that only a component (or the CI/AWS API, or Postgres) would refuse later count as holes.
 */
import assert from "assert";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { ConfigError, parseStackConfig } from "../components/config";
import { contextProblems, PipelineContext } from "../components/pipelines";
import { pipelineContext } from "../components/platform";
import { installMocks, Recorded, ROOT, toPulumiConfig } from "../scripts/offline";
import { withUnhandledRejections } from "./support/rejections";

const NS = "dbt-platform";
const ENV = `${NS}:environment`;
const DBT = `${NS}:dbt`;
const WH = `${NS}:warehouse`;
const CI = `${NS}:ci`;
const AWS = `${NS}:aws`;
const PASSWORD = `${NS}:warehouseAdminPassword`;
const SR = `${NS}:scheduledRuns`;

type Base = "dev" | "prod" | "snowflake" | "redshift";
const YAML: Record<Base, Record<string, any>> = {
    dev: parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")).config,
    prod: parse(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")).config,
    snowflake: parse(fs.readFileSync(path.join(ROOT, "Pulumi.snowflake.yaml"), "utf8")).config,
    redshift: parse(fs.readFileSync(path.join(ROOT, "Pulumi.redshift.yaml"), "utf8")).config,
};
const SF_KEY = `${NS}:snowflakePrivateKey`;
const RS_PASSWORD = `${NS}:redshiftAdminPassword`;
const PKCS8 = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
/** Redshift on Serverless: the workgroup is the host. */
const serverless = (c: Record<string, any>) => {
    delete c[WH].connection.host;
    c[WH].serverless = { namespaceName: "acme-dbt", workgroupName: "acme-dbt-wg" };
};

interface Hostile {
    name: string;
    /** The checked-in stack the config starts from (dev: no AWS; prod: AWS, docs site). */
    base?: Base;
    /** Stack name to run as (defaults to the base). */
    stack?: string;
    mutate: (c: Record<string, any>) => void;
    /** The key the problem must name, exactly. */
    path: string;
    /** What the problem's expected text must say. */
    expected?: RegExp;
    secretKeys?: string[];
}

const github = (repository: string) => (c: Record<string, any>) => (c[CI] = { system: "github", repository });
const azure = (repository: string) => (c: Record<string, any>) => (c[CI] = { system: "azure-devops", repository });
const ghProd = (c: Record<string, any>) => {
    c[CI] = { system: "github", repository: "acme/analytics-dbt" };
    delete c[AWS].bitbucket;
};

const HOSTILE: Hostile[] = [
    // Identifiers that reach SQL: quoting tricks, look-alikes, invisible characters.
    { name: "user name closing the quote", mutate: (c) => (c[WH].users[0].name = `dev_ci"; drop role role_prod; --`), path: `${WH}.users[0].name` },
    { name: "prod role with a space", mutate: (c) => (c[WH].roles.prod = "role prod"), path: `${WH}.roles.prod` },
    { name: "production schema with a dotted quote", mutate: (c) => (c[WH].schemas.production[0] = `analytics"."x`), path: `${WH}.schemas.production[0]` },
    { name: "developer name with a literal quote", mutate: (c) => (c[WH].developers[0].name = "anton'--"), path: `${WH}.developers[0].name` },
    { name: "database with a semicolon", mutate: (c) => (c[WH].connection.database = "analytics;"), path: `${WH}.connection.database` },
    { name: "admin login with a quote", mutate: (c) => (c[WH].connection.username = `postgres"--`), path: `${WH}.connection.username` },
    { name: "Cyrillic a in a production schema", mutate: (c) => (c[WH].schemas.production[0] = "\u0430nalytics"), path: `${WH}.schemas.production[0]` },
    { name: "full-width r in the dev role", mutate: (c) => (c[WH].roles.dev = "\uff52ole_dev"), path: `${WH}.roles.dev` },
    { name: "zero-width space in the ci schema", mutate: (c) => (c[WH].schemas.ci = "dbt\u200bci"), path: `${WH}.schemas.ci` },
    { name: "NUL byte in a developer schema", mutate: (c) => (c[WH].developers[1].schema = "dbt_\u0000x"), path: `${WH}.developers[1].schema` },
    { name: "trailing newline in a user name", mutate: (c) => (c[WH].users[2].name = "dbt_scheduler\n"), path: `${WH}.users[2].name` },
    { name: "Kelvin sign in a user name", mutate: (c) => (c[WH].users[1].name = "dbt_\u212aitbucket"), path: `${WH}.users[1].name` },
    // Names Postgres would truncate to 63 bytes (two names alias).
    { name: "64-byte production schema", mutate: (c) => (c[WH].schemas.production[0] = "a".repeat(64)), path: `${WH}.schemas.production[0]`, expected: /at most 63/ },
    { name: "64-byte dev role", mutate: (c) => (c[WH].roles.dev = "r".repeat(64)), path: `${WH}.roles.dev`, expected: /at most 63/ },
    { name: "64-byte database", mutate: (c) => (c[WH].connection.database = "d".repeat(64)), path: `${WH}.connection.database`, expected: /at most 63/ },
    { name: "developer whose default schema is 64 bytes", mutate: (c) => (c[WH].developers[0].name = "d".repeat(60)), path: `${WH}.developers[0].schema`, expected: /at most 63/ },
    // Reserved schema names: public, pg_*, information_schema, and any declared role or login.
    { name: "public as a production schema", mutate: (c) => (c[WH].schemas.production[0] = "public"), path: `${WH}.schemas.production[0]`, expected: /public/ },
    { name: "public as the ci schema", mutate: (c) => (c[WH].schemas.ci = "public"), path: `${WH}.schemas.ci`, expected: /public/ },
    { name: "public as a developer schema", mutate: (c) => (c[WH].developers[1].schema = "public"), path: `${WH}.developers[1].schema`, expected: /public/ },
    { name: "pg_catalog as a production schema", mutate: (c) => (c[WH].schemas.production[1] = "pg_catalog"), path: `${WH}.schemas.production[1]`, expected: /pg_/ },
    { name: "pg_toast as the ci schema", mutate: (c) => (c[WH].schemas.ci = "pg_toast"), path: `${WH}.schemas.ci`, expected: /pg_/ },
    { name: "information_schema as a developer schema", mutate: (c) => (c[WH].developers[0].schema = "information_schema"), path: `${WH}.developers[0].schema`, expected: /information_schema/ },
    { name: "the prod role as a production schema", mutate: (c) => (c[WH].schemas.production[1] = "role_prod"), path: `${WH}.schemas.production[1]`, expected: /role or login/ },
    { name: "the dev role as the ci schema", mutate: (c) => (c[WH].schemas.ci = "role_dev"), path: `${WH}.schemas.ci`, expected: /role or login/ },
    { name: "the CI login as a developer schema", mutate: (c) => (c[WH].developers[1].schema = "dev_ci"), path: `${WH}.developers[1].schema`, expected: /role or login/ },
    { name: "a developer's own name as their schema", mutate: (c) => (c[WH].developers[0].schema = "anton"), path: `${WH}.developers[0].schema`, expected: /role or login/ },
    { name: "the scheduler login as a production schema", mutate: (c) => (c[WH].schemas.production[0] = "dbt_scheduler"), path: `${WH}.schemas.production[0]`, expected: /role or login/ },
    { name: "the admin login as a production schema", mutate: (c) => (c[WH].schemas.production[0] = "postgres"), path: `${WH}.schemas.production[0]`, expected: /role or login/ },
    { name: "the platform schema as a production schema", mutate: (c) => (c[WH].schemas.production[1] = "dbt_platform"), path: `${WH}.schemas.production[1]`, expected: /dbt_platform/ },
    { name: "a developer whose default schema is the platform schema", mutate: (c) => c[WH].developers.push({ name: "platform" }), path: `${WH}.developers[2].schema`, expected: /dbt_platform/ },
    // Schemas inside another schema's custom-schema family (<schema>_<custom>), which dev-role members may create.
    { name: "a production schema in the CI schema's family", mutate: (c) => (c[WH].schemas.production[1] = "dbt_ci_marts"), path: `${WH}.schemas.production[1]`, expected: /family dbt_ci_/ },
    { name: "a production schema in a developer's family", mutate: (c) => (c[WH].schemas.production[0] = "dbt_anton_finance"), path: `${WH}.schemas.production[0]`, expected: /family dbt_anton_/ },
    { name: "a developer schema in another developer's family", mutate: (c) => (c[WH].developers[1].schema = "dbt_anton_2"), path: `${WH}.developers[1].schema`, expected: /family dbt_anton_/ },
    { name: "the CI schema in a developer's family", mutate: (c) => (c[WH].schemas.ci = "dbt_maria_ci"), path: `${WH}.schemas.ci`, expected: /family dbt_maria_/ },
    // Duplicate names across users, developers, roles and schemas.
    { name: "two users with one name", mutate: (c) => (c[WH].users[1].name = "dev_ci"), path: `${WH}.users[1].name`, expected: /not already used/ },
    { name: "a developer named like the prod role", mutate: (c) => (c[WH].developers[0].name = "role_prod"), path: `${WH}.developers[0].name`, expected: /not already used/ },
    { name: "a bot named like the admin login", mutate: (c) => (c[WH].users[2].name = "postgres"), path: `${WH}.users[2].name`, expected: /not already used/ },
    { name: "a developer named like the admin login", mutate: (c) => (c[WH].developers[1].name = "postgres"), path: `${WH}.developers[1].name`, expected: /not already used/ },
    { name: "a production schema listed twice", mutate: (c) => (c[WH].schemas.production = ["analytics", "analytics"]), path: `${WH}.schemas.production[1]`, expected: /not already declared/ },
    { name: "a developer schema equal to the ci schema", mutate: (c) => (c[WH].developers[1].schema = "dbt_ci"), path: `${WH}.developers[1].schema`, expected: /not already declared/ },
    { name: "a developer schema equal to a production schema", mutate: (c) => (c[WH].developers[0].schema = "analytics"), path: `${WH}.developers[0].schema`, expected: /not already declared/ },
    { name: "two developers sharing a schema", mutate: (c) => (c[WH].developers[1].schema = "dbt_anton"), path: `${WH}.developers[1].schema`, expected: /not already declared/ },
    // The pull-request prefix: one rule for config and the pipelines.
    { name: "PR prefix matching a developer schema", mutate: (c) => (c[WH].developers[1].schema = "dbt_pr_7"), path: `${WH}.schemas.pullRequestPrefix`, expected: /no declared schema/ },
    {
        name: "PR prefix matching a production schema as a custom-schema variant <prefix><n>_<custom>",
        mutate: (c) => (c[WH].schemas.production = ["analytics", "dbt_pr_7_marts"]),
        path: `${WH}.schemas.pullRequestPrefix`,
        expected: /no declared schema/,
    },
    {
        name: "PR prefix matching a developer login (its PR schema would be their $user schema)",
        mutate: (c) => {
            c[WH].schemas.pullRequestPrefix = "dev_";
            c[WH].developers.push({ name: "dev_7", schema: "dbt_dev7" });
        },
        path: `${WH}.schemas.pullRequestPrefix`,
        expected: /role or login/,
    },
    { name: "PR prefix starting with an underscore", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "_pr_"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix of 42 characters", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "p".repeat(42)), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix pg_", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "pg_pr_"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix in upper case", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "PR_"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix with a space", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "dbt pr"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix with a full-width letter", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "\uff44bt_"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "PR prefix empty", mutate: (c) => (c[WH].schemas.pullRequestPrefix = ""), path: `${WH}.schemas.pullRequestPrefix` },
    // Repository segments: API calls must not reach other paths.
    { name: "bitbucket repository ..", mutate: (c) => (c[CI].repository = "acme-data/.."), path: `${CI}.repository` },
    { name: "bitbucket repository .", mutate: (c) => (c[CI].repository = "acme-data/."), path: `${CI}.repository` },
    { name: "bitbucket repository URL-encoded ..", mutate: (c) => (c[CI].repository = "acme-data/%2e%2e"), path: `${CI}.repository` },
    { name: "bitbucket repository with a third segment", mutate: (c) => (c[CI].repository = "acme-data/../admin"), path: `${CI}.repository` },
    { name: "github repository ..", mutate: github("acme/.."), path: `${CI}.repository` },
    { name: "github repository .", mutate: github("acme/."), path: `${CI}.repository` },
    { name: "github owner ending in a dash", mutate: github("acme-/analytics-dbt"), path: `${CI}.repository` },
    { name: "github owner starting with a dash", mutate: github("-acme/analytics-dbt"), path: `${CI}.repository` },
    { name: "github repository ending in .git", mutate: github("acme/analytics-dbt.git"), path: `${CI}.repository` },
    { name: "github repository with a trailing slash", mutate: github("acme/analytics-dbt/"), path: `${CI}.repository` },
    { name: "azure project ..", mutate: azure("acme/../analytics-dbt"), path: `${CI}.repository` },
    { name: "azure repository ..", mutate: azure("acme/analytics/.."), path: `${CI}.repository` },
    { name: "azure repository .", mutate: azure("acme/analytics/."), path: `${CI}.repository` },
    { name: "azure project starting with _", mutate: azure("acme/_analytics/analytics-dbt"), path: `${CI}.repository` },
    { name: "azure project ending in a dot", mutate: azure("acme/analytics./analytics-dbt"), path: `${CI}.repository` },
    { name: "azure project with a leading space", mutate: azure("acme/ analytics/analytics-dbt"), path: `${CI}.repository` },
    // Branch names git refuses (or that read as options).
    { name: "branch with a space", mutate: (c) => (c[CI].mainBranch = "release 1"), path: `${CI}.mainBranch` },
    { name: "branch with ~", mutate: (c) => (c[CI].mainBranch = "main~1"), path: `${CI}.mainBranch` },
    { name: "branch with ^", mutate: (c) => (c[CI].mainBranch = "main^"), path: `${CI}.mainBranch` },
    { name: "branch with :", mutate: (c) => (c[CI].mainBranch = "feat:x"), path: `${CI}.mainBranch` },
    { name: "branch with a .. component", mutate: (c) => (c[CI].mainBranch = "a/../b"), path: `${CI}.mainBranch` },
    { name: "branch starting with a dash", mutate: (c) => (c[CI].mainBranch = "-main"), path: `${CI}.mainBranch` },
    { name: "branch ending in .lock", mutate: (c) => (c[CI].mainBranch = "main.lock"), path: `${CI}.mainBranch` },
    { name: "branch component starting with a dot", mutate: (c) => (c[CI].mainBranch = "release/.hidden"), path: `${CI}.mainBranch` },
    { name: "branch ending in a dot", mutate: (c) => (c[CI].mainBranch = "main."), path: `${CI}.mainBranch` },
    { name: "branch named HEAD", mutate: (c) => (c[CI].mainBranch = "HEAD"), path: `${CI}.mainBranch` },
    // Approvers.
    { name: "github approver by login instead of id", mutate: (c) => (c[CI] = { system: "github", repository: "acme/analytics-dbt", approvers: ["octocat"] }), path: `${CI}.approvers[0]` },
    { name: "azure approver not a GUID", mutate: (c) => (c[CI] = { system: "azure-devops", repository: "acme/analytics/analytics-dbt", approvers: ["someone@acme.example"] }), path: `${CI}.approvers[0]` },
    {
        name: "seven github approvers (an environment takes six reviewers)",
        mutate: (c) => (c[CI] = { system: "github", repository: "acme/analytics-dbt", approvers: ["1", "2", "3", "4", "5", "6", "7"] }),
        path: `${CI}.approvers`,
        expected: /at most 6/,
    },
    { name: "an approver listed twice", mutate: (c) => (c[CI] = { system: "github", repository: "acme/analytics-dbt", approvers: ["101", "101"] }), path: `${CI}.approvers[1]`, expected: /listed once/ },
    // Pins: an action by tag or a short SHA, an image without a digest.
    { name: "an action pinned by tag", mutate: (c) => (c[CI] = { system: "github", repository: "acme/analytics-dbt", pins: { actions: { checkout: { sha: "v4", tag: "v4" } } } }), path: `${CI}.pins`, expected: /actions\.checkout\.sha: expected a full commit SHA/ },
    { name: "a Bitbucket image without a digest", mutate: (c) => (c[CI] = { system: "bitbucket", repository: "acme/analytics-dbt", pins: { bitbucketImage: "python:3.11" } }), path: `${CI}.pins`, expected: /bitbucketImage: expected an image pinned by digest/ },
    // dbt: threads and exact versions.
    { name: "threads -1", mutate: (c) => (c[DBT].threads = -1), path: `${DBT}.threads` },
    { name: "threads 1000", mutate: (c) => (c[DBT].threads = 1000), path: `${DBT}.threads` },
    { name: "dbt version 1.11", mutate: (c) => (c[DBT].version = "1.11"), path: `${DBT}.version` },
    { name: "dbt version ~1.11.0", mutate: (c) => (c[DBT].version = "~1.11.0"), path: `${DBT}.version` },
    { name: "dbt version latest", mutate: (c) => (c[DBT].version = "latest"), path: `${DBT}.version` },
    { name: "dbt version 1.11.16rc1", mutate: (c) => (c[DBT].version = "1.11.16rc1"), path: `${DBT}.version` },
    { name: "adapter version with a shell tail", mutate: (c) => (c[DBT].adapterVersion = "1.11.0 && curl evil.example"), path: `${DBT}.adapterVersion` },
    { name: "python version with a shell tail", mutate: (c) => (c[DBT].pythonVersion = "3.11; rm -rf /"), path: `${DBT}.pythonVersion` },
    // AWS: regions, buckets, KMS keys, OIDC providers.
    { name: "a region no partition has", base: "prod", mutate: (c) => (c[AWS].region = "zz-evil-1"), path: `${AWS}.region` },
    { name: "a region with a trailing space", base: "prod", mutate: (c) => (c[AWS].region = "eu-west-1 "), path: `${AWS}.region` },
    { name: "bucket named like an IP address", base: "prod", mutate: (c) => (c[AWS].artifacts.bucketName = "192.168.5.4"), path: `${AWS}.artifacts.bucketName` },
    { name: "bucket with the -s3alias suffix", base: "prod", mutate: (c) => (c[AWS].artifacts.bucketName = "acme-dbt-s3alias"), path: `${AWS}.artifacts.bucketName` },
    { name: "bucket with the sthree- prefix", base: "prod", mutate: (c) => (c[AWS].artifacts.bucketName = "sthree-acme-dbt"), path: `${AWS}.artifacts.bucketName` },
    { name: "bucket with dots (breaks TLS on virtual-hosted S3)", base: "prod", mutate: (c) => (c[AWS].artifacts.bucketName = "acme.dbt.artifacts"), path: `${AWS}.artifacts.bucketName` },
    { name: "bucket of two characters", base: "prod", mutate: (c) => (c[AWS].artifacts.bucketName = "ab"), path: `${AWS}.artifacts.bucketName` },
    {
        name: "KMS key in another region",
        base: "prod",
        mutate: (c) => (c[AWS].artifacts.kmsKeyArn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        path: `${AWS}.artifacts.kmsKeyArn`,
        expected: /eu-west-1/,
    },
    { name: "KMS key id not a key id", base: "prod", mutate: (c) => (c[AWS].artifacts.kmsKeyArn = "arn:aws:kms:eu-west-1:123456789012:key/x"), path: `${AWS}.artifacts.kmsKeyArn` },
    {
        name: "KMS key in another partition",
        base: "prod",
        mutate: (c) => (c[AWS].artifacts.kmsKeyArn = "arn:aws-cn:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        path: `${AWS}.artifacts.kmsKeyArn`,
    },
    { name: "KMS alias instead of a key", base: "prod", mutate: (c) => (c[AWS].artifacts.kmsKeyArn = "arn:aws:kms:eu-west-1:123456789012:alias/dbt"), path: `${AWS}.artifacts.kmsKeyArn` },
    {
        name: "OIDC provider of another issuer",
        base: "prod",
        mutate: (c) => (c[AWS].oidcProviderArn = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"),
        path: `${AWS}.oidcProviderArn`,
        expected: /api\.bitbucket\.org/,
    },
    // Docs: domains and who may read them.
    { name: "docs domain with a trailing dot", base: "prod", mutate: (c) => (c[AWS].docs.domain = "dbt-docs.acme.example."), path: `${AWS}.docs.domain` },
    { name: "docs domain wildcard", base: "prod", mutate: (c) => (c[AWS].docs.domain = "*.acme.example"), path: `${AWS}.docs.domain` },
    { name: "docs domain in upper case", base: "prod", mutate: (c) => (c[AWS].docs.domain = "Docs.Acme.Example"), path: `${AWS}.docs.domain` },
    { name: "docs domain with an underscore", base: "prod", mutate: (c) => (c[AWS].docs.domain = "dbt_docs.acme.example"), path: `${AWS}.docs.domain` },
    { name: "docs domain of one label", base: "prod", mutate: (c) => (c[AWS].docs.domain = "localhost"), path: `${AWS}.docs.domain` },
    { name: "hosted zone id in lower case", base: "prod", mutate: (c) => (c[AWS].docs.hostedZoneId = "z0acme1234567890"), path: `${AWS}.docs.hostedZoneId` },
    { name: "allow-list 0.0.0.0/0 without allowPublic", base: "prod", mutate: (c) => (c[AWS].docs.allowedCidrs = ["0.0.0.0/0"]), path: `${AWS}.docs.allowedCidrs[0]`, expected: /allowPublic/ },
    { name: "allow-list 0.0.0.0/1 (half the Internet) without allowPublic", base: "prod", mutate: (c) => (c[AWS].docs.allowedCidrs = ["203.0.113.0/24", "0.0.0.0/1"]), path: `${AWS}.docs.allowedCidrs[1]`, expected: /allowPublic/ },
    { name: "allow-list 64.0.0.0/2 without allowPublic", base: "prod", mutate: (c) => (c[AWS].docs.allowedCidrs = ["64.0.0.0/2"]), path: `${AWS}.docs.allowedCidrs[0]`, expected: /allowPublic/ },
    { name: "allow-list ::/0", base: "prod", mutate: (c) => (c[AWS].docs.allowedCidrs = ["::/0"]), path: `${AWS}.docs.allowedCidrs[0]` },
    { name: "allowPublic as a string", base: "prod", mutate: (c) => Object.assign(c[AWS].docs, { allowPublic: "yes", allowedCidrs: ["0.0.0.0/0"] }), path: `${AWS}.docs.allowPublic` },
    { name: "allowPublic without an allow-list", base: "prod", mutate: (c) => Object.assign(c[AWS].docs, { access: "basic-auth", allowedCidrs: undefined, allowPublic: true }), path: `${AWS}.docs.allowPublic` },
    { name: "ip-allowlist without CIDRs", base: "prod", mutate: (c) => (c[AWS].docs.allowedCidrs = []), path: `${AWS}.docs.allowedCidrs` },
    // CI identities on the AWS side.
    { name: "github deploy environment ..", base: "prod", mutate: (c) => (ghProd(c), (c[AWS].github = { deployEnvironment: ".." })), path: `${AWS}.github.deployEnvironment` },
    {
        name: "azure service connection with a trailing space",
        base: "prod",
        mutate: (c) => {
            c[CI] = { system: "azure-devops", repository: "acme/analytics/analytics-dbt" };
            delete c[AWS].bitbucket;
            c[AWS].azureDevops = { organizationId: "0f8fad5b-d9cb-469f-a165-70867728950e", serviceConnection: "aws-ci " };
        },
        path: `${AWS}.azureDevops.serviceConnection`,
    },
    {
        name: "azure organization id one digit short",
        base: "prod",
        mutate: (c) => {
            c[CI] = { system: "azure-devops", repository: "acme/analytics/analytics-dbt" };
            delete c[AWS].bitbucket;
            c[AWS].azureDevops = { organizationId: "0f8fad5b-d9cb-469f-a165-70867728950", serviceConnection: "aws-ci" };
        },
        path: `${AWS}.azureDevops.organizationId`,
    },
    {
        name: "azure repository id not a GUID",
        mutate: (c) => (c[CI] = { system: "azure-devops", repository: "acme/analytics/analytics-dbt", manageSettings: true, azureRepositoryId: "analytics-dbt" }),
        path: `${CI}.azureRepositoryId`,
    },
    { name: "bitbucket deployment environment uuid with a stray character", base: "prod", mutate: (c) => (c[AWS].bitbucket.deploymentEnvironmentUuid = "{a1b2c3d4-0003-4f6a-9c1e-2b7d5e8f0a1z}"), path: `${AWS}.bitbucket.deploymentEnvironmentUuid` },
    { name: "bitbucket workspace uuid with one brace", base: "prod", mutate: (c) => (c[AWS].bitbucket.workspaceUuid = "{3c5f1a2e-8d4b-4f6a-9c1e-2b7d5e8f0a13"), path: `${AWS}.bitbucket.workspaceUuid` },
    // The admin password: a Pulumi secret, never plain text in the stack file.
    { name: "plaintext admin password", base: "prod", mutate: (c) => (c[PASSWORD] = "hunter2"), path: PASSWORD, expected: /secret/ },
    { name: "empty secret admin password", base: "prod", mutate: (c) => (c[PASSWORD] = ""), path: PASSWORD, secretKeys: [PASSWORD], expected: /non-empty/ },
    { name: "admin password as an object", base: "prod", mutate: (c) => (c[PASSWORD] = { value: "x" }), path: PASSWORD, secretKeys: [PASSWORD] },
    // Everything else that names a place or a stage.
    { name: "stack named ci", stack: "ci", mutate: () => undefined, path: "stack name" },
    { name: "a stage promoting from itself", base: "prod", mutate: (c) => (c[ENV].promotesFrom = "prod"), path: `${ENV}.promotesFrom` },
    { name: "host with a space", mutate: (c) => (c[WH].connection.host = "db .acme.internal"), path: `${WH}.connection.host` },
    { name: "port 0", mutate: (c) => (c[WH].connection.port = 0), path: `${WH}.connection.port` },
    // Managed services and the database itself.
    { name: "a bot named like the RDS superuser role", base: "prod", mutate: (c) => (c[WH].users[1].name = "rds_superuser"), path: `${WH}.users[1].name`, expected: /managed Postgres/ },
    { name: "a developer named rdsadmin", base: "prod", mutate: (c) => (c[WH].developers[0].name = "rdsadmin"), path: `${WH}.developers[0].name`, expected: /managed Postgres/ },
    { name: "a bot named like a Cloud SQL role", mutate: (c) => (c[WH].users[2].name = "cloudsqlsuperuser"), path: `${WH}.users[2].name`, expected: /managed Postgres/ },
    { name: "the template1 database", mutate: (c) => (c[WH].connection.database = "template1"), path: `${WH}.connection.database`, expected: /template/ },
    { name: "creating the postgres database", mutate: (c) => (c[WH].connection.database = "postgres"), path: `${WH}.connection.database`, expected: /maintenance/ },
    { name: "a release stage without TLS to a remote host", base: "prod", mutate: (c) => (c[WH].connection.sslmode = "disable"), path: `${WH}.connection.sslmode`, expected: /release stage/ },
    { name: "a release stage with sslmode prefer", base: "prod", mutate: (c) => (c[WH].connection.sslmode = "prefer"), path: `${WH}.connection.sslmode`, expected: /release stage/ },
    { name: "azure project named CON", mutate: azure("acme/CON/analytics-dbt"), path: `${CI}.repository` },
    {
        name: "azure service connection ..",
        base: "prod",
        mutate: (c) => {
            c[CI] = { system: "azure-devops", repository: "acme/analytics/analytics-dbt" };
            delete c[AWS].bitbucket;
            c[AWS].azureDevops = { organizationId: "0f8fad5b-d9cb-469f-a165-70867728950e", serviceConnection: ".." };
        },
        path: `${AWS}.azureDevops.serviceConnection`,
    },
    // Scheduled runs (issue 14): the section ECS, EventBridge Scheduler and SNS would otherwise refuse at the API.
    { name: "scheduledRuns on without its section", base: "prod", mutate: (c) => delete c[SR], path: SR, expected: /scheduledRuns section/ },
    { name: "scheduledRuns on without a scheduler user", base: "prod", mutate: (c) => (c[WH].users = c[WH].users.filter((u: any) => u.duty !== "scheduler")), path: `${NS}:features.scheduledRuns`, expected: /duty scheduler/ },
    { name: "a scheduledRuns section while the feature is off", base: "prod", mutate: (c) => (c[`${NS}:features`].scheduledRuns = false), path: SR, expected: /unless features.scheduledRuns/ },
    { name: "a schedule expression smuggling a second field set", base: "prod", mutate: (c) => (c[SR].schedules[0].cron = "cron(0 5 * * ? *) rate(1 minute)"), path: `${SR}.schedules[0].cron` },
    { name: "a five-field cron where Scheduler needs six", base: "prod", mutate: (c) => (c[SR].schedules[0].cron = "cron(0 5 * * *)"), path: `${SR}.schedules[0].cron` },
    { name: "a time zone path traversal", base: "prod", mutate: (c) => (c[SR].schedules[0].timezone = "../../etc/passwd"), path: `${SR}.schedules[0].timezone` },
    { name: "retry attempts beyond Scheduler's 185", base: "prod", mutate: (c) => (c[SR].schedules[0].maximumRetryAttempts = 186), path: `${SR}.schedules[0].maximumRetryAttempts` },
    { name: "two schedules of one name", base: "prod", mutate: (c) => c[SR].schedules.push({ ...c[SR].schedules[0] }), path: `${SR}.schedules`, expected: /unique/ },
    { name: "a subnet id that is a whole VPC", base: "prod", mutate: (c) => (c[SR].network.subnetIds[0] = "vpc-0a1b2c3d"), path: `${SR}.network.subnetIds[0]` },
    { name: "no security group", base: "prod", mutate: (c) => (c[SR].network.securityGroupIds = []), path: `${SR}.network.securityGroupIds` },
    { name: "a public IP given as a string", base: "prod", mutate: (c) => (c[SR].network.assignPublicIp = "false"), path: `${SR}.network.assignPublicIp` },
    { name: "memory Fargate refuses for the CPU", base: "prod", mutate: (c) => Object.assign(c[SR], { cpu: 256, memory: 4096 }), path: `${SR}.memory` },
    { name: "a log retention CloudWatch has no value for", base: "prod", mutate: (c) => (c[SR].logRetentionDays = 45), path: `${SR}.logRetentionDays` },
    { name: "an http (not https) alert endpoint", base: "prod", mutate: (c) => (c[SR].alerts[0] = { protocol: "https", endpoint: "http://hooks.example/x" }), path: `${SR}.alerts[0].endpoint` },
    { name: "an sms alert (not a supported protocol)", base: "prod", mutate: (c) => (c[SR].alerts[0] = { protocol: "sms", endpoint: "+15550100" }), path: `${SR}.alerts[0].protocol` },
    { name: "fullBuildEvery without freshOnly", base: "prod", mutate: (c) => (c[SR].fullBuildEvery = 6), path: `${SR}.fullBuildEvery` },
    { name: "a janitor TTL of zero hours", base: "prod", mutate: (c) => (c[SR].janitor.ttlHours = 0), path: `${SR}.janitor.ttlHours` },
    { name: "a janitor schedule in Scheduler syntax (CI schedulers take five fields)", base: "prod", mutate: (c) => (c[SR].janitor.schedule = "cron(0 3 * * ? *)"), path: `${SR}.janitor.schedule` },
    { name: "an unknown scheduledRuns key", base: "prod", mutate: (c) => (c[SR].command = "rm -rf /"), path: `${SR}.command` },

    // Snowflake (issue 12), from Pulumi.snowflake.yaml: names Snowflake would fold, quote or reserve; sizes, keys, policies.
    { name: "snowflake account with a space", base: "snowflake", mutate: (c) => (c[WH].account = "acme analytics"), path: `${WH}.account`, expected: /<organization>-<account>/ },
    { name: "snowflake account given as its URL", base: "snowflake", mutate: (c) => (c[WH].account = "acme-analytics.snowflakecomputing.com"), path: `${WH}.account` },
    { name: "snowflake account locator without an organization", base: "snowflake", mutate: (c) => (c[WH].account = "XY12345"), path: `${WH}.account` },
    { name: "snowflake admin without a user", base: "snowflake", mutate: (c) => (c[WH].admin = {}), path: `${WH}.admin.user`, expected: /required/ },
    { name: "snowflake lower-case production database (dbt would reach another object)", base: "snowflake", mutate: (c) => (c[WH].databases.production = "analytics"), path: `${WH}.databases.production`, expected: /upper-case/ },
    { name: "snowflake development database closing a quote", base: "snowflake", mutate: (c) => (c[WH].databases.development = `ANALYTICS_DEV"; DROP DATABASE ANALYTICS; --`), path: `${WH}.databases.development` },
    { name: "snowflake system database as production", base: "snowflake", mutate: (c) => (c[WH].databases.production = "SNOWFLAKE"), path: `${WH}.databases.production`, expected: /system database/ },
    { name: "snowflake one database for production and development", base: "snowflake", mutate: (c) => (c[WH].databases.development = "ANALYTICS"), path: `${WH}.databases.development`, expected: /other than databases.production/ },
    { name: "snowflake database too long for its access role", base: "snowflake", mutate: (c) => (c[WH].databases.production = "D".repeat(250)), path: `${WH}.databases.production`, expected: /_WRITE/ },
    { name: "snowflake reserved keyword as the production schema", base: "snowflake", mutate: (c) => (c[WH].schemas.production = "SELECT"), path: `${WH}.schemas.production`, expected: /reserved keyword/ },
    { name: "snowflake PUBLIC as the ci schema", base: "snowflake", mutate: (c) => (c[WH].schemas.ci = "PUBLIC"), path: `${WH}.schemas.ci`, expected: /PUBLIC/ },
    { name: "snowflake lower-case PR prefix", base: "snowflake", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "ci_pr_"), path: `${WH}.schemas.pullRequestPrefix`, expected: /upper-case/ },
    { name: "snowflake ci schema inside the PR family (cleanup would drop it)", base: "snowflake", mutate: (c) => (c[WH].schemas.ci = "CI_PR_7"), path: `${WH}.schemas.ci`, expected: /pull-request family/ },
    { name: "snowflake warehouse size HUGE", base: "snowflake", mutate: (c) => (c[WH].warehouses.transform.size = "HUGE"), path: `${WH}.warehouses.transform.size`, expected: /XSMALL/ },
    { name: "snowflake warehouse that never suspends", base: "snowflake", mutate: (c) => (c[WH].warehouses.ci.autoSuspendSeconds = 0), path: `${WH}.warehouses.ci.autoSuspendSeconds` },
    { name: "snowflake statement timeout of eight days", base: "snowflake", mutate: (c) => (c[WH].warehouses.transform.statementTimeoutSeconds = 691_200), path: `${WH}.warehouses.transform.statementTimeoutSeconds` },
    { name: "snowflake autoResume as a string", base: "snowflake", mutate: (c) => (c[WH].warehouses.reporting.autoResume = "yes"), path: `${WH}.warehouses.reporting.autoResume` },
    { name: "snowflake two duties on one warehouse name", base: "snowflake", mutate: (c) => (c[WH].warehouses.ci.name = "TRANSFORMING"), path: `${WH}.warehouses.ci.name`, expected: /not already declared/ },
    { name: "snowflake ACCOUNTADMIN as the transformer role", base: "snowflake", mutate: (c) => (c[WH].roles.transformer = "ACCOUNTADMIN"), path: `${WH}.roles.transformer`, expected: /system role/ },
    { name: "snowflake ci role equal to the transformer role", base: "snowflake", mutate: (c) => (c[WH].roles.ci = "TRANSFORMER"), path: `${WH}.roles.ci`, expected: /not already declared/ },
    { name: "snowflake user name with a Cyrillic A", base: "snowflake", mutate: (c) => (c[WH].users[0].name = "SVC_DBT_\u0410CI"), path: `${WH}.users[0].name` },
    { name: "snowflake two deploy users", base: "snowflake", mutate: (c) => (c[WH].users[0].duty = "deploy"), path: `${WH}.users`, expected: /at most one user with duty deploy/ },
    { name: "snowflake no deploy user", base: "snowflake", mutate: (c) => (c[WH].users[1].duty = "scheduler"), path: `${WH}.users`, expected: /duty deploy/ },
    { name: "snowflake two users of one name", base: "snowflake", mutate: (c) => (c[WH].users[1].name = "SVC_DBT_CI"), path: `${WH}.users[1].name`, expected: /not already declared/ },
    { name: "snowflake active key 2 before the second key exists", base: "snowflake", mutate: (c) => (c[WH].users[1].activeKey = 2), path: `${WH}.users[1].activeKey`, expected: /secondKey/ },
    { name: "snowflake active key 3", base: "snowflake", mutate: (c) => (c[WH].users[0].activeKey = 3), path: `${WH}.users[0].activeKey` },
    { name: "snowflake service user named like the admin", base: "snowflake", mutate: (c) => (c[WH].users[1].name = "PULUMI_ADMIN"), path: `${WH}.users[1].name`, expected: /admin/ },
    { name: "snowflake 1024-bit keys", base: "snowflake", mutate: (c) => (c[WH].rsaBits = 1024), path: `${WH}.rsaBits` },
    { name: "snowflake network policy with an IPv6 network", base: "snowflake", mutate: (c) => (c[WH].networkPolicy = { allowedIpList: ["2001:db8::/32"] }), path: `${WH}.networkPolicy.allowedIpList[0]` },
    { name: "snowflake network policy blocking 0.0.0.0/0", base: "snowflake", mutate: (c) => (c[WH].networkPolicy = { allowedIpList: ["192.0.2.0/24"], blockedIpList: ["0.0.0.0/0"] }), path: `${WH}.networkPolicy.blockedIpList[0]` },
    { name: "snowflake network policy allowing nothing", base: "snowflake", mutate: (c) => (c[WH].networkPolicy = { allowedIpList: [] }), path: `${WH}.networkPolicy.allowedIpList`, expected: /at least one/ },
    { name: "snowflake endpoint host with a path", base: "snowflake", mutate: (c) => (c[WH].endpoint = { host: "fakesnow.local/evil", port: 8080, protocol: "http" }), path: `${WH}.endpoint.host` },
    { name: "snowflake endpoint protocol ftp", base: "snowflake", mutate: (c) => (c[WH].endpoint = { host: "127.0.0.1", port: 8080, protocol: "ftp" }), path: `${WH}.endpoint.protocol` },
    {
        name: "snowflake http endpoint to a remote host on a release stage",
        base: "snowflake",
        mutate: (c) => {
            c[ENV] = { kind: "release" };
            c[WH].endpoint = { host: "snowflake-proxy.acme.internal", port: 8080, protocol: "http" };
        },
        path: `${WH}.endpoint.protocol`,
        expected: /release stage/,
    },
    { name: "snowflake unknown key (a password has no place here)", base: "snowflake", mutate: (c) => (c[WH].password = "hunter2"), path: `${WH}.password`, expected: /no such key/ },
    { name: "snowflake private key in plain text", base: "snowflake", mutate: (c) => (c[SF_KEY] = PKCS8), path: SF_KEY, expected: /secret/ },
    { name: "snowflake private key in PKCS#1 form", base: "snowflake", mutate: (c) => (c[SF_KEY] = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"), path: SF_KEY, secretKeys: [SF_KEY], expected: /PKCS#8/ },
    { name: "a Postgres admin password on a snowflake stack", base: "snowflake", mutate: (c) => (c[PASSWORD] = "s3cret"), path: PASSWORD, secretKeys: [PASSWORD], expected: /unless warehouse.kind is postgres/ },

    // Redshift (issue 13), from Pulumi.redshift.yaml: one production identity, groups, developer and build schema families.
    { name: "redshift scheduler as its own user (no role masking on Redshift)", base: "redshift", mutate: (c) => (c[WH].users[2].name = "dbt_scheduler"), path: `${WH}.users[2].name`, expected: /no SET ROLE/ },
    { name: "redshift CI as the production user", base: "redshift", mutate: (c) => (c[WH].users[0].name = "dbt_prod"), path: `${WH}.users[0].name`, expected: /must not own production/ },
    { name: "redshift without a deploy user", base: "redshift", mutate: (c) => (c[WH].users = [{ name: "dbt_ci", duty: "ci" }]), path: `${WH}.users`, expected: /duty deploy/ },
    { name: "redshift upper-case dev group", base: "redshift", mutate: (c) => (c[WH].groups.dev = "GRP_DEV"), path: `${WH}.groups.dev`, expected: /lower-case/ },
    { name: "redshift group named public", base: "redshift", mutate: (c) => (c[WH].groups.prod = "public"), path: `${WH}.groups.prod`, expected: /reserved/ },
    { name: "redshift one group for dev and prod", base: "redshift", mutate: (c) => (c[WH].groups.prod = "grp_dev"), path: `${WH}.groups.prod`, expected: /different group/ },
    { name: "redshift bot named pg_*", base: "redshift", mutate: (c) => (c[WH].users[0].name = "pg_ci"), path: `${WH}.users[0].name`, expected: /pg_/ },
    { name: "redshift developer closing a quote", base: "redshift", mutate: (c) => (c[WH].developers[0].name = `anton"; drop user dbt_prod; --`), path: `${WH}.developers[0].name` },
    { name: "redshift developer named like the admin", base: "redshift", mutate: (c) => (c[WH].developers[1].name = "platform_admin"), path: `${WH}.developers[1].name`, expected: /not already used/ },
    { name: "redshift developer named like a group", base: "redshift", mutate: (c) => (c[WH].developers[0].name = "grp_prod"), path: `${WH}.developers[0].name`, expected: /not already used/ },
    { name: "redshift developer schema equal to a production schema", base: "redshift", mutate: (c) => (c[WH].developers[0].schema = "dbt"), path: `${WH}.developers[0].schema`, expected: /not already declared/ },
    { name: "redshift production schema inside a developer's custom family", base: "redshift", mutate: (c) => c[WH].schemas.production.push("anton_staging"), path: `${WH}.developers[0].schema`, expected: /not already declared/ },
    { name: "redshift developer schema too long for its custom schemas", base: "redshift", mutate: (c) => (c[WH].developers[0].schema = "a".repeat(126)), path: `${WH}.developers[0].schema`, expected: /short enough/ },
    { name: "redshift production schema the PR cleanup would drop", base: "redshift", mutate: (c) => c[WH].schemas.production.push("dbt_build_archive"), path: `${WH}.schemas.pullRequestPrefix`, expected: /dropped by PR cleanup/ },
    { name: "redshift upper-case PR prefix", base: "redshift", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "DBT_BUILD_"), path: `${WH}.schemas.pullRequestPrefix` },
    { name: "redshift PR prefix too long for PR numbers and custom schemas", base: "redshift", mutate: (c) => (c[WH].schemas.pullRequestPrefix = "p".repeat(110)), path: `${WH}.schemas.pullRequestPrefix`, expected: /short enough/ },
    { name: "redshift no production schema", base: "redshift", mutate: (c) => (c[WH].schemas.production = []), path: `${WH}.schemas.production`, expected: /non-empty/ },
    { name: "redshift custom schema with a dash", base: "redshift", mutate: (c) => (c[WH].customSchemas = ["stag-ing"]), path: `${WH}.customSchemas[0]` },
    { name: "redshift port 80", base: "redshift", mutate: (c) => (c[WH].connection.port = 80), path: `${WH}.connection.port` },
    { name: "redshift sslmode prefer (not a Redshift client mode)", base: "redshift", mutate: (c) => (c[WH].connection.sslmode = "prefer"), path: `${WH}.connection.sslmode`, expected: /disable, require, verify-full/ },
    { name: "redshift release stage without TLS", base: "redshift", mutate: (c) => (c[WH].connection.sslmode = "disable"), path: `${WH}.connection.sslmode`, expected: /release stage/ },
    { name: "redshift Serverless without TLS on a release stage", base: "redshift", mutate: (c) => (serverless(c), (c[WH].connection.sslmode = "disable")), path: `${WH}.connection.sslmode`, expected: /Serverless workgroup is not this machine/ },
    { name: "redshift without a cluster host", base: "redshift", mutate: (c) => delete c[WH].connection.host, path: `${WH}.connection.host`, expected: /required/ },
    { name: "redshift RBAC role names without rbac", base: "redshift", mutate: (c) => (c[WH].roles = { dev: "role_dev" }), path: `${WH}.roles`, expected: /rbac/ },
    { name: "redshift IAM without a region", base: "redshift", mutate: (c) => (c[WH].auth = { method: "iam", clusterId: "dbt-cluster" }), path: `${WH}.auth.region` },
    { name: "redshift IAM region with a two-digit number", base: "redshift", mutate: (c) => (c[WH].auth = { method: "iam", clusterId: "dbt-cluster", region: "eu-west-12" }), path: `${WH}.auth.region` },
    { name: "redshift IAM naming a cluster and a workgroup", base: "redshift", mutate: (c) => (c[WH].auth = { method: "iam", clusterId: "dbt-cluster", workgroup: "dbt-wg", region: "eu-west-1" }), path: `${WH}.auth.clusterId`, expected: /not both/ },
    { name: "redshift database auth with a cluster id", base: "redshift", mutate: (c) => (c[WH].auth = { method: "database", clusterId: "dbt-cluster" }), path: `${WH}.auth.clusterId`, expected: /iam/ },
    { name: "redshift IAM cluster id in upper case", base: "redshift", mutate: (c) => (c[WH].auth = { method: "iam", clusterId: "DBT-Cluster", region: "eu-west-1" }), path: `${WH}.auth.clusterId` },
    { name: "redshift Serverless and a cluster host", base: "redshift", mutate: (c) => (c[WH].serverless = { namespaceName: "acme-dbt", workgroupName: "acme-dbt-wg" }), path: `${WH}.connection.host`, expected: /no such key/ },
    { name: "redshift Serverless base capacity 12 RPUs", base: "redshift", mutate: (c) => (serverless(c), (c[WH].serverless.baseCapacity = 12)), path: `${WH}.serverless.baseCapacity` },
    { name: "redshift Serverless namespace with an underscore", base: "redshift", mutate: (c) => (serverless(c), (c[WH].serverless.namespaceName = "acme_dbt")), path: `${WH}.serverless.namespaceName` },
    { name: "redshift IAM through another workgroup than the Serverless one", base: "redshift", mutate: (c) => (serverless(c), (c[WH].auth = { method: "iam", workgroup: "other-wg", region: "eu-west-1" })), path: `${WH}.auth.workgroup`, expected: /acme-dbt-wg/ },
    {
        name: "redshift Serverless while AWS is off",
        base: "redshift",
        mutate: (c) => {
            serverless(c);
            c[AWS].enabled = false;
            Object.assign(c[`${NS}:features`], { docsSite: false, scheduledRuns: false });
            delete c[SR];
        },
        path: `${WH}.serverless`,
        expected: /aws.enabled/,
    },
    { name: "redshift admin password in plain text", base: "redshift", mutate: (c) => (c[RS_PASSWORD] = "hunter2"), path: RS_PASSWORD, expected: /secret/ },
    { name: "redshift admin password with Serverless (it is generated)", base: "redshift", mutate: (c) => (serverless(c), (c[RS_PASSWORD] = "s3cret")), path: RS_PASSWORD, secretKeys: [RS_PASSWORD], expected: /generated/ },
    { name: "a Snowflake private key on a redshift stack", base: "redshift", mutate: (c) => (c[SF_KEY] = PKCS8), path: SF_KEY, secretKeys: [SF_KEY], expected: /unless warehouse.kind is snowflake/ },
    { name: "redshift adapter other than the tested dbt-redshift", base: "redshift", mutate: (c) => (c[DBT].adapterVersion = "1.10.0"), path: `${DBT}.adapterVersion`, expected: /1\.11\.2/ },
];

function configOf(h: Hostile): Record<string, string> {
    const c = structuredClone(YAML[h.base ?? "dev"]);
    h.mutate(c);
    return toPulumiConfig(Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)));
}

/** Evaluates index.ts under mocks and keeps what was registered even when loading it throws. */
async function evaluate(stack: string, config: Record<string, string>, secretKeys: string[]): Promise<{ resources: Recorded[]; error: unknown }> {
    const { resources, settle } = await installMocks(stack);
    pulumi.runtime.setAllConfig(config, secretKeys);
    const entry = require.resolve(path.join(ROOT, "index.ts"));
    delete require.cache[entry];
    let error: unknown;
    // A value that a component rejects inside an apply surfaces as an unhandled rejection.
    await withUnhandledRejections(async (late) => {
        try {
            require(entry);
        } catch (e) {
            error = e;
        }
        try {
            await settle();
        } finally {
            delete require.cache[entry];
        }
        error ??= late[0];
    });
    return { resources, error };
}

describe("hostile stack configs are rejected by config, before anything is registered", function () {
    const outcome = new Map<string, { byConfig: boolean; registered: number }>();

    it(`the table holds at least 60 distinct hostile configs (${HOSTILE.length})`, () => {
        assert.ok(HOSTILE.length >= 60);
        assert.strictEqual(new Set(HOSTILE.map((h) => h.name)).size, HOSTILE.length, "case names are distinct");
        const configs = HOSTILE.map((h) => `${h.stack ?? h.base ?? "dev"}|${JSON.stringify(configOf(h))}|${h.secretKeys ?? ""}`);
        assert.strictEqual(new Set(configs).size, HOSTILE.length, "every case is a different config");
    });

    for (const h of HOSTILE) {
        it(`${h.name} -> ${h.path}`, async () => {
            const stack = h.stack ?? h.base ?? "dev";
            const raw = configOf(h);
            let caught: unknown;
            try {
                parseStackConfig(stack, raw, h.secretKeys ?? []);
            } catch (e) {
                caught = e;
            }
            const { resources, error } = await evaluate(stack, raw, h.secretKeys ?? []);
            const byConfig = caught instanceof ConfigError && caught.problems.some((p) => p.path === h.path && (!h.expected || h.expected.test(p.expected)));
            outcome.set(h.name, { byConfig, registered: resources.length });
            assert.ok(caught !== undefined, `config accepted it; the program then ${error ? `failed with: ${String(error).split("\n")[0]}` : "did not fail"} after registering ${resources.length} resources`);
            assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
            assert.ok(
                byConfig,
                `no problem at ${h.path}${h.expected ? ` matching ${h.expected}` : ""}; problems were:\n    ${caught.problems.map((p) => `${p.path}: ${p.expected}`).join("\n    ")}`,
            );
            assert.ok(error instanceof ConfigError, `the program did not stop with a ConfigError: ${String(error)}`);
            assert.deepStrictEqual(resources.map((r) => `${r.type}::${r.name}`), [], "the program registered resources before failing");
        });
    }

    after(() => {
        const rejected = [...outcome.values()].filter((o) => o.byConfig && o.registered === 0).length;
        console.log(`hostile configs rejected before registration: ${rejected}/${HOSTILE.length}`);
    });
});

describe("hostile-config controls (the rules do not reject what is fine)", () => {
    const ok = (base: Base, mutate: (c: Record<string, any>) => void, secretKeys: string[] = []) => {
        const c = structuredClone(YAML[base]);
        mutate(c);
        return parseStackConfig(base, toPulumiConfig(c), secretKeys);
    };

    it("0.0.0.0/0 is allowed with an explicit docs.allowPublic: true", () => {
        const c = ok("prod", (c) => Object.assign(c[AWS].docs, { allowPublic: true, allowedCidrs: ["0.0.0.0/0"] }));
        assert.deepStrictEqual(c.aws.docs.allowedCidrs, ["0.0.0.0/0"]);
        assert.strictEqual(c.aws.docs.allowPublic, true);
    });

    it("a /8 allow-list entry needs no allowPublic; allowPublic defaults to false", () => {
        const c = ok("prod", (c) => (c[AWS].docs.allowedCidrs = ["10.0.0.0/8"]));
        assert.strictEqual(c.aws.docs.allowPublic, false);
    });

    it("a release stage may skip TLS to this machine; the postgres database is fine when not created", () => {
        ok("prod", (c) => Object.assign(c[WH].connection, { host: "127.0.0.1", sslmode: "disable" }));
        ok("prod", (c) => (c[WH].connection.database = "postgres"));
    });

    it("a secret admin password is accepted", () => {
        const c = ok("prod", (c) => (c[PASSWORD] = "s3cret"), [PASSWORD]);
        assert.strictEqual(c.adminPasswordKey, PASSWORD);
    });

    it("ordinary names pass: slugs with dots, nested branches, a 41-character PR prefix, a same-region KMS key", () => {
        ok("dev", (c) => {
            c[CI] = { system: "github", repository: "acme-corp/analytics.dbt", mainBranch: "release/2026.1" };
            c[WH].schemas.pullRequestPrefix = "p".repeat(41);
        });
        ok("dev", (c) => (c[CI] = { system: "azure-devops", repository: "acme/Analytics Platform/analytics.dbt", mainBranch: "main" }));
        ok("prod", (c) => (c[AWS].artifacts.kmsKeyArn = "arn:aws:kms:eu-west-1:123456789012:key/mrk-1234abcd12ab34cd56ef1234567890ab"));
        ok("prod", (c) => (c[AWS].region = "ap-southeast-2"));
        ok("prod", (c) => (c[AWS].region = "us-gov-west-1"));
    });
});

describe("one pull-request prefix rule for config and pipelines", () => {
    const PREFIXES = ["dbt_pr_", "pr", "p".repeat(41), "p".repeat(42), "_pr_", "pg_pr_", "PR_", "dbt-pr-", "9pr_", "pr\u0430_", "pr_1_", "a"];

    for (const prefix of PREFIXES) {
        it(`${JSON.stringify(prefix)}: the config accepts it exactly when the pipeline model does`, () => {
            const c = structuredClone(YAML.dev);
            c[WH].schemas.pullRequestPrefix = prefix;
            let config: ReturnType<typeof parseStackConfig> | undefined;
            try {
                config = parseStackConfig("dev", toPulumiConfig(c));
            } catch (e) {
                if (!(e instanceof ConfigError)) throw e;
            }
            // The model's verdict on the same prefix, with an otherwise valid context.
            const good = parseStackConfig("dev", toPulumiConfig(YAML.dev));
            const planned = pipelineContext(good, undefined, {});
            const ctx: PipelineContext = { ...planned, warehouse: { ...planned.warehouse, pullRequestSchemas: { ...planned.warehouse.pullRequestSchemas, prefix } } };
            const modelOk = !contextProblems(ctx).some((p) => p.startsWith("warehouse.pullRequestSchemas.prefix"));
            assert.strictEqual(config !== undefined, modelOk, `config ${config ? "accepts" : "rejects"} it, the pipeline model ${modelOk ? "accepts" : "rejects"} it`);
        });
    }
});

describe("the admin password through the running program", () => {
    it("a secret password is accepted and the program registers its resources", async () => {
        const config = toPulumiConfig({ ...YAML.prod, [PASSWORD]: "s3cret-Admin-pw" });
        const { resources, error } = await evaluate("prod", config, [PASSWORD]);
        assert.strictEqual(error, undefined);
        assert.ok(resources.length > 0);
    });

    it("a plaintext password is refused without echoing it", async () => {
        const PLAIN = "plain-Admin-Password-77";
        const { resources, error } = await evaluate("prod", toPulumiConfig({ ...YAML.prod, [PASSWORD]: PLAIN }), []);
        assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
        const p = error.problems.find((x) => x.path === PASSWORD);
        assert.ok(p, error.message);
        assert.match(p.expected, /pulumi config set --secret dbt-platform:warehouseAdminPassword/);
        assert.ok(!error.message.includes(PLAIN) && !JSON.stringify(error.problems).includes(PLAIN), `the password leaked:\n${error.message}`);
        assert.strictEqual(resources.length, 0);
    });
});
