/**
 * Tool versions the rendered pipelines install by default. They match test/dbt/requirements.txt,
 * which the end-to-end tests install: CI then runs exactly what was tested (a test checks they agree).
 */
export const DBT_CORE_VERSION = "1.11.16";
export const DBT_POSTGRES_VERSION = "1.11.0";
export const AWSCLI_VERSION = "1.46.2";
export const PYTHON_VERSION = "3.11";
