export * from "./janitor";
export * from "./pullRequests";
export * from "./schemas";
export * from "./docsPreviews";
