/**
 * Writes a deterministic synthetic dbt project of N models for benchmarks: a few seeds,
 * staging views, several intermediate layers whose models have one or more parents, and marts.
 * Same conventions as test/fixtures/dbt-project: name/profile acme_analytics, no custom
 * schemas, no packages, no profiles.yml.
 *
 *   tsx scripts/gen-dbt-project.ts --models 250 --out /tmp/project [--seed 1]
 */
import * as fs from "fs";
import * as path from "path";

export interface GenerateOptions {
    models: number;
    /** PRNG seed; the same models + seed always give the same project. */
    seed?: number;
}

export interface GeneratedProject {
    dir: string;
    /** Model names by layer: staging, intermediate layers in order, marts. */
    layers: string[][];
    models: string[];
    /** A model from the middle intermediate layer, a natural "one changed model" for slim CI. */
    middleModel: string;
}

const SEEDS = ["raw_accounts", "raw_orders", "raw_events", "raw_products"];
const SEED_ROWS = 40;
const GROUPS = ["alpha", "beta", "gamma", "delta", "epsilon"];
/** A view whose expansion would scan more relations than this becomes a table, bounding planning time. */
const MAX_VIEW_FANIN = 24;

function mulberry32(seed: number): () => number {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6d2b79f5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

interface Model {
    name: string;
    parents: string[];
    table: boolean;
    sql: string;
}

export function generateProject(dir: string, opts: GenerateOptions): GeneratedProject {
    const n = Math.floor(opts.models);
    if (!(n >= 10)) throw new Error(`--models must be at least 10 (got ${opts.models})`);
    const rand = mulberry32(opts.seed ?? 1);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];

    const stagingCount = Math.max(SEEDS.length, Math.round(n * 0.12));
    const martCount = Math.max(2, Math.round(n * 0.15));
    const intCount = n - stagingCount - martCount;
    const intLayers = Math.min(5, Math.max(1, Math.floor(intCount / 4)));

    // Relations a view expands to when queried (tables and seeds count as one).
    const fanin = new Map<string, number>(SEEDS.map((s) => [s, 1]));
    const models: Model[] = [];
    const layers: string[][] = [];
    const add = (name: string, parents: string[], preferTable: boolean, sql: string) => {
        const cost = parents.reduce((sum, p) => sum + fanin.get(p)!, 0);
        const table = preferTable || cost > MAX_VIEW_FANIN;
        fanin.set(name, table ? 1 : cost);
        models.push({ name, parents, table, sql });
        return name;
    };
    const pad = (i: number) => String(i).padStart(3, "0");

    const staging: string[] = [];
    for (let i = 0; i < stagingCount; i++) {
        const seed = SEEDS[i % SEEDS.length];
        const factor = (1 + (i % 7) / 10).toFixed(1);
        const sql = [
            "select",
            "    id,",
            "    category as grp,",
            `    cast(value as numeric(14, 4)) * ${factor} as amount,`,
            `    (id * ${i + 3}) % 17 as score`,
            `from {{ ref('${seed}') }}`,
        ].join("\n");
        staging.push(add(`stg_${pad(i + 1)}`, [seed], false, sql));
    }
    layers.push(staging);

    let previous = staging;
    const earlier = [...staging];
    let made = 0;
    for (let l = 0; l < intLayers; l++) {
        const size = Math.floor(intCount / intLayers) + (l < intCount % intLayers ? 1 : 0);
        const layer: string[] = [];
        for (let j = 0; j < size; j++) {
            // Round-robin primary parent: every model of the previous layer gets a child (fan-out).
            const parents = [previous[j % previous.length]];
            const extra = rand() < 0.6 ? (rand() < 0.25 ? 2 : 1) : 0;
            for (let e = 0; e < extra; e++) {
                const p = pick(earlier);
                if (!parents.includes(p)) parents.push(p);
            }
            made++;
            const name = `int_l${l + 1}_${pad(made)}`;
            layer.push(add(name, parents, rand() < 0.1, intermediateSql(parents, made)));
        }
        layers.push(layer);
        earlier.push(...layer);
        previous = layer;
    }

    const lastTwo = layers.slice(-2).flat();
    const marts: string[] = [];
    for (let j = 0; j < martCount; j++) {
        const parents = [previous[j % previous.length]];
        for (let e = 0; e < (rand() < 0.5 ? 2 : 1); e++) {
            const p = pick(lastTwo);
            if (!parents.includes(p)) parents.push(p);
        }
        marts.push(add(`mart_${pad(j + 1)}`, parents, j % 3 === 0, martSql(parents)));
    }
    layers.push(marts);

    write(dir, models, layers);
    const middle = layers[Math.max(1, Math.floor(layers.length / 2))];
    return { dir, layers, models: models.map((m) => m.name), middleModel: middle[0] };
}

function joins(parents: string[]): string {
    return [`from {{ ref('${parents[0]}') }} as p0`, ...parents.slice(1).map((p, i) => `left join {{ ref('${p}') }} as p${i + 1} on p${i + 1}.id = p0.id`)].join("\n");
}

function intermediateSql(parents: string[], k: number): string {
    const others = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.amount, 0) * 0.25`);
    const scores = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.score, 0)`);
    return [
        "select",
        "    p0.id,",
        "    p0.grp,",
        `    round(${["p0.amount * 1.01", ...others].join(" + ")} + ${k % 13}, 4) as amount,`,
        `    ${scores.length ? `greatest(p0.score, ${scores.join(", ")})` : "p0.score"} + 1 as score`,
        joins(parents),
    ].join("\n");
}

function martSql(parents: string[]): string {
    const others = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.amount, 0)`);
    return [
        "select",
        "    p0.grp,",
        "    count(*) as row_count,",
        `    sum(${["p0.amount", ...others].join(" + ")}) as amount,`,
        "    max(p0.score) as max_score",
        joins(parents),
        "group by p0.grp",
    ].join("\n");
}

function write(dir: string, models: Model[], layers: string[][]): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
        path.join(dir, "dbt_project.yml"),
        [
            "# Generated by scripts/gen-dbt-project.ts.",
            "name: acme_analytics",
            'version: "1.0.0"',
            "profile: acme_analytics",
            'model-paths: ["models"]',
            'seed-paths: ["seeds"]',
            "models:",
            "  acme_analytics:",
            "    +materialized: view",
            "",
        ].join("\n"),
    );

    const seedsDir = path.join(dir, "seeds");
    fs.mkdirSync(seedsDir, { recursive: true });
    SEEDS.forEach((seed, s) => {
        const rows = ["id,category,value,created_at"];
        for (let id = 1; id <= SEED_ROWS; id++) {
            const value = (((id * 7919 + s * 104729) % 100000) / 100).toFixed(2);
            const day = String(1 + ((id + s) % 28)).padStart(2, "0");
            rows.push(`${id},${GROUPS[(id + s) % GROUPS.length]},${value},2025-01-${day}`);
        }
        fs.writeFileSync(path.join(seedsDir, `${seed}.csv`), rows.join("\n") + "\n");
    });

    const folders = ["staging", ...layers.slice(1, -1).map((_, i) => `intermediate/layer_${i + 1}`), "marts"];
    const byName = new Map(models.map((m) => [m.name, m]));
    layers.forEach((layer, li) => {
        const folder = path.join(dir, "models", folders[li]);
        fs.mkdirSync(folder, { recursive: true });
        const schema: string[] = ["version: 2", "", "models:"];
        layer.forEach((name, j) => {
            const m = byName.get(name)!;
            const config = m.table ? "{{ config(materialized='table') }}\n\n" : "";
            fs.writeFileSync(path.join(folder, `${name}.sql`), `${config}${m.sql}\n`);
            const isMart = li === layers.length - 1;
            const key = isMart ? "grp" : "id";
            // Keys on every staging model and mart, on a sample of intermediates.
            const tests = li === 0 || isMart ? ["unique", "not_null"] : j % 4 === 0 ? ["not_null"] : [];
            if (tests.length) schema.push(`  - name: ${name}`, "    columns:", `      - name: ${key}`, `        data_tests: [${tests.join(", ")}]`);
        });
        if (schema.length > 3) fs.writeFileSync(path.join(folder, "_schema.yml"), schema.join("\n") + "\n");
    });
}

function main(argv: string[]): void {
    const arg = (flag: string) => {
        const i = argv.indexOf(flag);
        return i >= 0 ? argv[i + 1] : undefined;
    };
    const out = arg("--out");
    if (!out) throw new Error("usage: tsx scripts/gen-dbt-project.ts --models N --out DIR [--seed S]");
    const p = generateProject(path.resolve(out), { models: Number(arg("--models") ?? 240), seed: arg("--seed") ? Number(arg("--seed")) : undefined });
    console.log(`wrote ${p.models.length} models in ${p.layers.length} layers to ${p.dir} (middle model: ${p.middleModel})`);
}

if (require.main === module) {
    try {
        main(process.argv.slice(2));
    } catch (e) {
        console.error((e as Error).message);
        process.exit(1);
    }
}
