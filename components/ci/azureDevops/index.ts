/**
 * Azure DevOps settings as Pulumi dynamic resources (REST 7.1), module `azuredevops`:
 * VariableGroup, SecureFile, BuildDefinition (YAML pipeline), Environment, ApprovalCheck,
 * BranchControlCheck, ExclusiveLockCheck, ResourceApprovalCheck, BuildValidationPolicy and
 * PipelinePermission. Credentials come from AZURE_DEVOPS_EXT_PAT, SYSTEM_ACCESSTOKEN or the
 * stack config key dbt-platform:azureDevopsToken, read inside each provider call.
 */
export { ApprovalCheck, ApprovalCheckArgs, APPROVAL_CHECK_TYPE_ID, approvalCheckProvider } from "./approvalCheck";
export { BUILD_POLICY_TYPE_ID, BuildValidationPolicy, BuildValidationPolicyArgs, buildValidationPolicyProvider } from "./buildValidationPolicy";
export {
    BRANCH_CONTROL_DEFINITION,
    BranchControlCheck,
    BranchControlCheckArgs,
    CHECK_TYPE_IDS,
    CheckedResourceType,
    ExclusiveLockCheck,
    ExclusiveLockCheckArgs,
    ResourceApprovalCheck,
    ResourceApprovalCheckArgs,
    branchControlCheckProvider,
    exclusiveLockCheckProvider,
    resourceApprovalCheckProvider,
} from "./checks";
export { BuildDefinition, BuildDefinitionArgs, BuildRepository, buildDefinitionProvider } from "./buildDefinition";
export {
    API as AZURE_DEVOPS_API_VERSIONS,
    DEFAULT_API_URL as AZURE_DEVOPS_DEFAULT_API_URL,
    TOKEN_CONFIG_KEY as AZURE_DEVOPS_TOKEN_CONFIG_KEY,
} from "./common";
export { Environment, EnvironmentArgs, environmentProvider } from "./environment";
export { PipelinePermission, PipelinePermissionArgs, PipelineResourceType, pipelinePermissionProvider } from "./pipelinePermission";
export { SecureFile, SecureFileArgs, secureFileProvider } from "./secureFile";
export { VariableGroup, VariableGroupArgs, VariableGroupVariable, variableGroupProvider } from "./variableGroup";
export { AzureDevopsCiSettings, AzureDevopsCiSettingsArgs } from "./settings";
export { ownershipMarker } from "./common";
