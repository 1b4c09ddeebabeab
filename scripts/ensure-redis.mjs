#!/usr/bin/env node
// Runs before `npm test` and `npm run demo`: both need a redis-server binary (tests and `lorafuse dev`
// start private ones). On a fresh Debian machine as root it is installed with apt; elsewhere we say how.
import { execFileSync, spawnSync } from 'node:child_process';

const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
if (found.status === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
if (isRoot && hasApt) {
  console.log('redis-server is missing: installing it with apt-get (Debian package redis-server)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env });
  process.exit(0);
}
console.error(
  'redis-server is required and was not found on PATH.\n' +
    '  Debian/Ubuntu: sudo apt-get install -y redis-server\n' +
    '  macOS:         brew install redis',
);
process.exit(1);
