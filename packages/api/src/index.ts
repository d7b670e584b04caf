export { type AppOptions, createApp } from './app.ts';
export { ApiError, type ErrorBody } from './errors.ts';
