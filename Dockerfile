# One image for the api, relay and applier: TypeScript runs through tsx, no build step.
FROM node:20-bookworm-slim
WORKDIR /app
RUN npm install -g pnpm@9.15.9
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml turbo.json tsconfig.base.json ./
# pnpm applies patches/ at install (patchedDependencies in package.json).
COPY patches ./patches
COPY packages ./packages
COPY tools ./tools
COPY drizzle ./drizzle
RUN pnpm install --frozen-lockfile --prod=false
ENV NODE_ENV=production
USER node
CMD ["node", "--import", "tsx", "packages/api/src/main.ts"]
