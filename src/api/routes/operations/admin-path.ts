// Where the bull-board dashboard lives: admin-queues.ts serves it there, or index.ts refuses it there.
export const ADMIN_QUEUES_PATH = '/admin/queues';
