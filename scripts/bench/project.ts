/**
 * A deterministic dbt project with realistic costs for `npm run bench:ci`: base tables of a few
 * hundred thousand rows generated in SQL (generate_series), staging views joining seeds, layers of
 * intermediate views/tables/incremental models, aggregated marts, generic tests, and two custom
 * schemas (`intermediate`, `marts`). Same `profile:` as the fixture (acme_analytics).
 */
import * as fs from "fs";
import * as path from "path";
import { PROFILE_NAME } from "../../test/support/dbtProject";

export interface BenchProjectOptions {
    /** Number of models (at least 20). */
    models: number;
    /** Rows of each base table. */
    rows: number;
    /** PRNG seed; the same options always give the same project. */
    seed?: number;
}

export interface BenchProject {
    dir: string;
    models: string[];
    /** Models by kind, for the report. */
    counts: { tables: number; views: number; incremental: number; tests: number; seeds: number };
    /** The model every contender changes: a mid-DAG table that is not incremental. */
    changedModel: string;
}

const SEEDS: Record<string, string[]> = {
    seed_regions: ["region_id,region_name", ...["north", "south", "east", "west", "central", "islands", "metro", "rural", "coast", "alpine"].map((r, i) => `${i + 1},${r}`)],
    seed_channels: ["channel_id,channel_name", ...["web", "store", "partner", "phone", "app"].map((c, i) => `${i},${c}`)],
};
/** A view whose expansion would scan more relations than this becomes a table. */
const MAX_VIEW_FANIN = 8;

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

type Materialization = "view" | "table" | "incremental";

interface Model {
    name: string;
    folder: string;
    materialized: Materialization;
    sql: string;
    /** Column the generic tests run on, and which tests. */
    tests: { column: string; tests: string[] } | undefined;
}

export function generateBenchProject(dir: string, opts: BenchProjectOptions): BenchProject {
    const n = Math.floor(opts.models);
    if (!(n >= 20)) throw new Error(`--models must be at least 20 (got ${opts.models})`);
    const rows = Math.floor(opts.rows);
    if (!(rows >= 100)) throw new Error(`--rows must be at least 100 (got ${opts.rows})`);
    const rand = mulberry32(opts.seed ?? 7);
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
    const pad = (i: number) => String(i).padStart(3, "0");

    const baseCount = Math.max(2, Math.round(n * 0.02));
    const stagingCount = Math.max(baseCount, Math.round(n * 0.12));
    const martCount = Math.max(2, Math.round(n * 0.15));
    const intCount = n - baseCount - stagingCount - martCount;
    const intLayers = Math.min(5, Math.max(2, Math.floor(intCount / 6)));

    const models: Model[] = [];
    const fanin = new Map<string, number>();
    const add = (m: Omit<Model, "materialized"> & { materialized?: Materialization }, parents: string[]): string => {
        const cost = parents.reduce((sum, p) => sum + (fanin.get(p) ?? 1), 0);
        const materialized: Materialization = m.materialized ?? (cost > MAX_VIEW_FANIN ? "table" : "view");
        fanin.set(m.name, materialized === "view" ? cost : 1);
        models.push({ ...m, materialized });
        return m.name;
    };

    // Base tables: the expensive part of a full build, as raw event tables are.
    const bases: string[] = [];
    for (let i = 0; i < baseCount; i++) {
        const name = `base_events_${pad(i + 1)}`;
        const sql = [
            "select",
            "    g as id,",
            `    (g * ${7 + i}) % 997 as customer_id,`,
            "    1 + g % 10 as region_id,",
            "    g % 5 as channel_id,",
            `    round(((g * 7919 + ${i * 104729}) % 100000) / 100.0, 2) as amount,`,
            `    date '2025-01-01' + (g % 365) as event_date`,
            `from generate_series(1, ${rows}) as g`,
        ].join("\n");
        bases.push(add({ name, folder: "base", materialized: "table", sql, tests: { column: "id", tests: ["unique", "not_null"] } }, []));
    }

    const staging: string[] = [];
    for (let i = 0; i < stagingCount; i++) {
        const base = bases[i % bases.length];
        const sql = [
            "select",
            "    b.id,",
            "    b.customer_id,",
            "    r.region_name as grp,",
            "    c.channel_name as channel,",
            `    b.amount * ${(1 + (i % 7) / 10).toFixed(1)} as amount,`,
            `    (b.id * ${i + 3}) % 17 as score,`,
            "    b.event_date",
            `from {{ ref('${base}') }} as b`,
            "left join {{ ref('seed_regions') }} as r on r.region_id = b.region_id",
            "left join {{ ref('seed_channels') }} as c on c.channel_id = b.channel_id",
        ].join("\n");
        staging.push(add({ name: `stg_${pad(i + 1)}`, folder: "staging", sql, tests: i % 2 === 0 ? { column: "id", tests: ["not_null"] } : undefined }, [base]));
    }

    let previous = staging;
    const earlier = [...staging];
    let made = 0;
    let changedModel: string | undefined;
    const middleLayer = Math.floor(intLayers / 2);
    for (let l = 0; l < intLayers; l++) {
        const size = Math.floor(intCount / intLayers) + (l < intCount % intLayers ? 1 : 0);
        const layer: string[] = [];
        for (let j = 0; j < size; j++) {
            // Round-robin primary parent: every model of the previous layer gets a child.
            const parents = [previous[j % previous.length]];
            const extra = rand() < 0.6 ? (rand() < 0.25 ? 2 : 1) : 0;
            for (let e = 0; e < extra; e++) {
                const p = pick(earlier);
                if (!parents.includes(p)) parents.push(p);
            }
            made++;
            const r = rand();
            const materialized: Materialization | undefined = r < 0.06 ? "incremental" : r < 0.2 ? "table" : undefined;
            const name = `int_l${l + 1}_${pad(made)}`;
            add({ name, folder: `intermediate/layer_${l + 1}`, materialized, sql: intermediateSql(parents, made, materialized === "incremental"), tests: j % 4 === 0 ? { column: "id", tests: ["not_null"] } : undefined }, parents);
            if (l === middleLayer && !changedModel && materialized === "table") changedModel = name;
            layer.push(name);
        }
        earlier.push(...layer);
        previous = layer;
    }
    if (!changedModel) changedModel = models.find((m) => m.folder === `intermediate/layer_${middleLayer + 1}` && m.materialized !== "incremental")!.name;

    const lastTwo = earlier.slice(-Math.max(2, Math.floor(intCount / intLayers) * 2));
    for (let j = 0; j < martCount; j++) {
        const parents = [previous[j % previous.length]];
        for (let e = 0; e < (rand() < 0.5 ? 2 : 1); e++) {
            const p = pick(lastTwo);
            if (!parents.includes(p)) parents.push(p);
        }
        add({ name: `mart_${pad(j + 1)}`, folder: "marts", materialized: j % 3 === 0 ? "table" : undefined, sql: martSql(parents), tests: { column: "grp", tests: ["unique", "not_null"] } }, parents);
    }

    write(dir, models);
    const count = (k: Materialization) => models.filter((m) => m.materialized === k).length;
    return {
        dir,
        models: models.map((m) => m.name),
        counts: {
            tables: count("table"),
            views: count("view"),
            incremental: count("incremental"),
            tests: models.reduce((s, m) => s + (m.tests?.tests.length ?? 0), 0),
            seeds: Object.keys(SEEDS).length,
        },
        changedModel,
    };
}

function joins(parents: string[]): string {
    return [`from {{ ref('${parents[0]}') }} as p0`, ...parents.slice(1).map((p, i) => `left join {{ ref('${p}') }} as p${i + 1} on p${i + 1}.id = p0.id`)].join("\n");
}

function intermediateSql(parents: string[], k: number, incremental: boolean): string {
    const others = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.amount, 0) * 0.25`);
    const scores = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.score, 0)`);
    const lines = [
        "select",
        "    p0.id,",
        "    p0.customer_id,",
        "    p0.grp,",
        "    p0.channel,",
        `    round(${["p0.amount * 1.01", ...others].join(" + ")} + ${k % 13}, 4) as amount,`,
        `    ${scores.length ? `greatest(p0.score, ${scores.join(", ")})` : "p0.score"} + 1 as score,`,
        "    p0.event_date",
        joins(parents),
    ];
    if (incremental) {
        // New ids only on an incremental run, the usual append pattern.
        lines.unshift("{{ config(materialized='incremental', unique_key='id') }}", "");
        lines.push("{% if is_incremental() %}", "where p0.id > (select coalesce(max(id), 0) from {{ this }})", "{% endif %}");
    }
    return lines.join("\n");
}

function martSql(parents: string[]): string {
    const others = parents.slice(1).map((_, i) => `coalesce(p${i + 1}.amount, 0)`);
    return [
        "select",
        "    p0.grp,",
        "    count(*) as row_count,",
        "    count(distinct p0.customer_id) as customers,",
        `    sum(${["p0.amount", ...others].join(" + ")}) as amount,`,
        "    max(p0.score) as max_score,",
        "    max(p0.event_date) as last_event",
        joins(parents),
        "group by p0.grp",
    ].join("\n");
}

function write(dir: string, models: Model[]): void {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
        path.join(dir, "dbt_project.yml"),
        [
            "# Generated by scripts/bench/project.ts.",
            `name: ${PROFILE_NAME}`,
            'version: "1.0.0"',
            `profile: ${PROFILE_NAME}`,
            'model-paths: ["models"]',
            'seed-paths: ["seeds"]',
            'macro-paths: ["macros"]',
            "models:",
            `  ${PROFILE_NAME}:`,
            "    +materialized: view",
            "    intermediate:",
            "      +schema: intermediate",
            "    marts:",
            "      +schema: marts",
            "",
        ].join("\n"),
    );
    fs.mkdirSync(path.join(dir, "seeds"), { recursive: true });
    for (const [name, lines] of Object.entries(SEEDS)) fs.writeFileSync(path.join(dir, "seeds", `${name}.csv`), lines.join("\n") + "\n");

    const byFolder = new Map<string, Model[]>();
    for (const m of models) byFolder.set(m.folder, [...(byFolder.get(m.folder) ?? []), m]);
    for (const [folder, ms] of byFolder) {
        const d = path.join(dir, "models", folder);
        fs.mkdirSync(d, { recursive: true });
        const schema = ["version: 2", "", "models:"];
        for (const m of ms) {
            const config = m.materialized === "table" ? "{{ config(materialized='table') }}\n\n" : "";
            fs.writeFileSync(path.join(d, `${m.name}.sql`), `${config}${m.sql}\n`);
            if (m.tests) schema.push(`  - name: ${m.name}`, "    columns:", `      - name: ${m.tests.column}`, `        data_tests: [${m.tests.tests.join(", ")}]`);
        }
        if (schema.length > 3) fs.writeFileSync(path.join(d, "_schema.yml"), schema.join("\n") + "\n");
    }
}
