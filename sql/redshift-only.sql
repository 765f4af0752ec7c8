-- Redshift-only statement forms: rendered here, never executed by the tests (Postgres 15 rejects them).
-- ALTER USER … PASSWORD DISABLE
ALTER USER "dbt_prod" PASSWORD DISABLE;
-- CREATE ROLE / DROP ROLE
CREATE ROLE "role_prod";
DROP ROLE "role_prod";
-- GRANT ROLE … TO …
GRANT ROLE "role_prod" TO "dbt_prod";
-- GRANT … TO ROLE …
GRANT USAGE, CREATE ON SCHEMA "dbt" TO ROLE "role_prod";
-- GRANT DROP / ALTER / TRUNCATE ON TABLE …
GRANT ALTER, DROP ON TABLE "dbt"."fact_dogs" TO ROLE "role_prod";
-- GRANT … FOR TABLES IN SCHEMA … DATABASE … (scoped permissions)
GRANT SELECT FOR TABLES IN SCHEMA "dbt" DATABASE "dev" TO ROLE "role_prod";
