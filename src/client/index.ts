// The package's public entry (`import { LorafuseClient } from 'lorafuse'`): the typed API client and
// the types of what the API sends and takes.
export {
  COLLECTIONS,
  type ClientOptions,
  JobWaitTimeoutError,
  LorafuseApiError,
  LorafuseClient,
  LorafuseConnectionError,
  OPERATIONS,
  type Operation,
  TERMINAL_STATES,
  type UploadFile,
  type WaitOptions,
} from './lorafuse-client.ts';
export type * from './types.ts';
