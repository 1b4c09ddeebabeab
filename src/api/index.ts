// What the CLI's server needs: build the app from its dependencies, close it on shutdown.
export { type AppDependencies, buildApp, closeApp, type LorafuseApp } from './app.ts';
export { loggerOptions, redactUrl } from './logger.ts';
export { openApiYaml } from './openapi-document.ts';
