/**
 * A tiny dbt project whose models read two freshness-checked sources (raw.orders, raw.events),
 * for the scheduled-run tests: what `source_status:fresher+` should rebuild is exactly the
 * descendants of the source that received rows. profiles.yml reads the scheduler target from the
 * environment, as the rendered `.ci/profiles.yml` does.
 */
import * as fs from "fs";
import * as path from "path";

export const SOURCED_PROFILE = "acme_sched";

const FILES: Record<string, string> = {
    "dbt_project.yml": `name: acme_sched
version: "1.0.0"
profile: ${SOURCED_PROFILE}
model-paths: ["models"]
models:
  acme_sched:
    staging:
      +materialized: view
    marts:
      +materialized: table
`,
    "models/sources.yml": `version: 2
sources:
  - name: raw
    schema: raw
    freshness:
      warn_after: { count: 12, period: hour }
    loaded_at_field: loaded_at
    tables:
      - name: orders
      - name: events
`,
    "models/staging/stg_orders.sql": "select id, amount, loaded_at from {{ source('raw', 'orders') }}\n",
    "models/staging/stg_events.sql": "select id, kind, loaded_at from {{ source('raw', 'events') }}\n",
    "models/staging/schema.yml": `version: 2
models:
  - name: stg_orders
    columns:
      - name: id
        data_tests: [not_null]
`,
    "models/marts/orders_daily.sql": "select date_trunc('day', loaded_at) as day, count(*) as orders, sum(amount) as amount from {{ ref('stg_orders') }} group by 1\n",
    "models/marts/events_by_kind.sql": "select kind, count(*) as events from {{ ref('stg_events') }} group by 1\n",
    "models/marts/activity.sql":
        "select o.day, o.orders, (select sum(events) from {{ ref('events_by_kind') }}) as events from {{ ref('orders_daily') }} o\n",
    "models/marts/calendar.sql": "select generate_series(date '2026-01-01', date '2026-12-31', interval '1 day')::date as day\n",
};

/** The profile: the scheduler target, every field from DBT_SCHEDULER_* (the secret's JSON keys). */
const PROFILES = `${SOURCED_PROFILE}:
  target: scheduler
  outputs:
    scheduler:
      type: postgres
      host: "{{ env_var('DBT_SCHEDULER_HOST') }}"
      port: "{{ env_var('DBT_SCHEDULER_PORT') | as_number }}"
      user: "{{ env_var('DBT_SCHEDULER_USER') }}"
      password: "{{ env_var('DBT_SCHEDULER_PASSWORD') }}"
      dbname: "{{ env_var('DBT_SCHEDULER_DBNAME') }}"
      schema: "{{ env_var('DBT_SCHEDULER_SCHEMA') }}"
      threads: 4
      sslmode: disable
`;

/** Writes the project (profiles in `.ci/`); `broken` adds a model that fails at run time. */
export function writeSourcedProject(dir: string, opts: { broken?: boolean } = {}): string {
    const files: Record<string, string> = { ...FILES, ".ci/profiles.yml": PROFILES };
    if (opts.broken) files["models/marts/broken.sql"] = "select no_such_column from {{ ref('stg_orders') }}\n";
    for (const [rel, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), text);
    }
    return dir;
}

/** SQL (as the admin) creating the raw sources with a first load. */
export const RAW_SOURCES_SQL = [
    "create schema if not exists raw",
    "create table raw.orders (id int, amount numeric, loaded_at timestamptz not null)",
    "create table raw.events (id int, kind text, loaded_at timestamptz not null)",
    "insert into raw.orders select g, g * 1.5, now() - interval '2 hours' from generate_series(1, 50) g",
    "insert into raw.events select g, 'kind_' || (g % 3), now() - interval '2 hours' from generate_series(1, 80) g",
];

/** Plain SQL mirroring PostgresWarehouse's role masking: the bot logs in and acts as role_prod. */
export function maskedProdBotSql(database: string, bot: string, password: string, schema: string): string[] {
    return [
        "create role role_prod nologin",
        `create role ${bot} login password '${password}'`,
        `grant role_prod to ${bot}`,
        `alter role ${bot} set role role_prod`,
        `grant connect, create on database ${database} to role_prod`,
        `create schema ${schema} authorization role_prod`,
        "grant usage on schema raw to role_prod",
        "grant select on all tables in schema raw to role_prod",
    ];
}
