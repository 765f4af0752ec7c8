"""The Snowflake drift audit's collector: runs SHOW statements as the read-only audit identity.

scripts/audit.ts spawns it (`npm run audit -- --stack <snowflake stack>` without --catalog) and
drives it: one JSON request per stdin line, {"sql": "SHOW ..."}; one JSON answer per stdout line,
{"columns": [...], "rows": [[...]]} or {"error": "..."}. Which statements to run (exactly
SNOWFLAKE_AUDIT_QUERIES, expanded) and how the rows become the recorded-catalog shape is decided in
components/access/warehouses.ts; this file only holds the connection, so the mapping is tested in
TypeScript against the recorded fixtures.

Python because snowflake-connector-python 4.8.0 is already in .venv (dbt-snowflake brings it): no
new dependency for the platform, and the same driver, key-pair login and host/port/protocol
endpoint handling dbt itself uses (fakesnow is reached the same way).

Connection from the environment only, never an argument:
  SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, SNOWFLAKE_PRIVATE_KEY_PATH (a PKCS#8 PEM file, mode 600),
  optional SNOWFLAKE_PRIVATE_KEY_PASSPHRASE, SNOWFLAKE_ROLE (default: the user's default role),
  SNOWFLAKE_HOST / SNOWFLAKE_PORT / SNOWFLAKE_PROTOCOL (a non-default endpoint: fakesnow, PrivateLink).
Read-only by construction: anything but a single SHOW statement is refused before it reaches Snowflake.
Exit 0 when stdin ends; 3 when the login fails (the message names the account and user, never the key).
"""

import json
import os
import re
import sys

# One SHOW statement: no statement separator outside the quoted identifiers the audit builds.
SHOW = re.compile(r'^SHOW (?:[A-Za-z_ .]|"(?:[^"]|"")*")+$')


def connect():
    import snowflake.connector

    missing = [k for k in ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PRIVATE_KEY_PATH") if not os.environ.get(k)]
    if missing:
        raise SystemExit(f"snowflake-catalog: set {', '.join(missing)} (the read-only audit identity, key-pair auth)")
    args = {
        "account": os.environ["SNOWFLAKE_ACCOUNT"],
        "user": os.environ["SNOWFLAKE_USER"],
        "private_key_file": os.environ["SNOWFLAKE_PRIVATE_KEY_PATH"],
        "authenticator": "SNOWFLAKE_JWT",
        "client_session_keep_alive": False,
        "application": "dbt-platform-audit",
        # A scheduled job should fail in a minute, not hang on an unreachable account.
        "login_timeout": 60,
    }
    if os.environ.get("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"):
        args["private_key_file_pwd"] = os.environ["SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"]
    if os.environ.get("SNOWFLAKE_ROLE"):
        args["role"] = os.environ["SNOWFLAKE_ROLE"]
    for key in ("host", "port", "protocol"):
        value = os.environ.get(f"SNOWFLAKE_{key.upper()}")
        if value:
            args[key] = int(value) if key == "port" else value
    try:
        return snowflake.connector.connect(**args)
    except Exception as e:  # noqa: BLE001 - any login failure ends the collection
        print(f"snowflake-catalog: login as {args['user']} to account {args['account']} failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(3)


def main():
    conn = connect()
    try:
        cur = conn.cursor()
        for line in sys.stdin:
            if not line.strip():
                continue
            sql = json.loads(line)["sql"]
            if not SHOW.match(sql):
                answer = {"error": f"refused (the audit only runs single SHOW statements): {sql}"}
            else:
                try:
                    cur.execute(sql)
                    answer = {"columns": [d[0] for d in cur.description or []], "rows": [list(r) for r in cur.fetchall()]}
                except Exception as e:  # noqa: BLE001 - reported to the caller, which decides
                    answer = {"error": f"{type(e).__name__}: {e}"}
            sys.stdout.write(json.dumps(answer, default=str) + "\n")
            sys.stdout.flush()
    finally:
        conn.close()


if __name__ == "__main__":
    main()
