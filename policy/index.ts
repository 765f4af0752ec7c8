/**
 * The dbt-platform CrossGuard policy pack. Constructing PolicyPack starts the analyzer server, so
 * nothing but the Pulumi CLI should load this file; tests import ./policies instead.
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("dbt-platform", { policies });
