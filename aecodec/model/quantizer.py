"""Residual product vector quantizer with entropy-constrained codeword search.

The latent (``groups * dim`` channels) is split into small groups of ``dim`` channels;
each group is quantized by ``stages`` residual codebooks of ``codes`` entries. Code 0
of every codebook is the zero vector, so a stage can leave a group untouched for a
few hundredths of a bit: this is what lets the entropy coder win (a plain nearest-
neighbour VQ keeps usage near uniform and the coder has nothing to gain).

Codewords are chosen by distortion + lambda_s * bits (ECVQ), with bits taken from a
learned prior over indices conditioned on whether the previous stage used a non-zero
code at the same place. lambda_s shrinks geometrically with the stage, so every stage
refines at a finer scale and deeper prefixes keep improving.

Codebooks and the prior are updated by exponential moving averages (k-means style),
not by gradients; dead codes are restarted from batch residuals.
"""
from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import nn

LN2 = math.log(2.0)


class ResidualProductVQ(nn.Module):
    def __init__(self, stages: int, groups: int, dim: int, codes: int,
                 bit_cost: float, bit_cost_decay: float, ema_decay: float = 0.99):
        super().__init__()
        self.stages, self.groups, self.dim, self.codes = stages, groups, dim, codes
        self.ema_decay = ema_decay
        self.uniform_mix = 0.2      # in training: keeps unused codes within reach
        self.search_mix = 0.2       # at encode time (encoder-side only; decoding never sees it)
        self.search_scale = 1.0     # multiplies the bit costs lambda_s at encode time
        self.search_beam = 1        # partial paths kept by the encode-time search
        costs = torch.tensor([bit_cost * bit_cost_decay ** s for s in range(stages)])
        self.register_buffer("bit_cost", costs)
        self.register_buffer("codebooks", torch.zeros(stages, groups, codes, dim))
        self.register_buffer("prior_counts", torch.ones(stages, groups, 2, codes))
        # How much a unit of error in each latent channel costs in pixel squared error
        # (measured through the decoder): makes the codeword search pixel-consistent.
        self.register_buffer("distortion_weight", torch.ones(groups, dim))
        self.register_buffer("ema_count", torch.ones(stages, groups, codes))
        self.register_buffer("ema_sum", torch.zeros(stages, groups, codes, dim))

    # -- layout helpers -------------------------------------------------------------
    def _to_grid(self, y: torch.Tensor) -> torch.Tensor:
        """latent [B, G*d, H, W] -> a view [B, H, W, G, d] (no copy)."""
        b, c, h, w = y.shape
        if c != self.groups * self.dim:
            raise ValueError(f"latent has {c} channels, quantizer expects {self.groups * self.dim}")
        return y.view(b, self.groups, self.dim, h, w).permute(0, 3, 4, 1, 2)

    def _to_vectors(self, y: torch.Tensor) -> torch.Tensor:
        return self._to_grid(y).reshape(-1, self.groups, self.dim)

    def _to_latent(self, v: torch.Tensor, shape) -> torch.Tensor:
        b, c, h, w = shape
        return v.view(b, h, w, self.groups, self.dim).permute(0, 3, 4, 1, 2).reshape(b, c, h, w)

    def bits_table(self) -> torch.Tensor:
        """-log2 p(index | stage, group, previous-stage-nonzero): [S, G, 2, K].

        A 20% uniform mixture bounds every code's cost (log2 K + 2.3 bits), so codes
        that fell out of use can still be picked when they pay for themselves.
        """
        p = self.prior_counts / self.prior_counts.sum(-1, keepdim=True)
        mix = self.uniform_mix if self.training else self.search_mix
        return -torch.log2((1 - mix) * p + mix / self.codes)

    def _costs(self, r: torch.Tensor, cb: torch.Tensor, ctx: torch.Tensor, stage_bits: torch.Tensor):
        """Weighted squared distances [N, G, K] and bit costs [N, G, K] for one stage."""
        w = self.distortion_weight                               # [G, d]
        rw = r * w
        # bmm on [G, N, d] x [G, d, K]: 4x faster than the same einsum on a CPU
        cross = torch.bmm(rw.transpose(0, 1), cb.transpose(1, 2)).transpose(0, 1)
        dist = (rw * r).sum(-1, keepdim=True) - 2 * cross + (cb * cb * w[:, None]).sum(-1)[None]
        b = torch.where(ctx[..., None].bool(), stage_bits[:, 1][None], stage_bits[:, 0][None])
        return dist, b

    # -- training -------------------------------------------------------------------
    def forward(self, y: torch.Tensor, n_stages: int):
        """Quantize with ``n_stages`` stages. Returns (y_hat with straight-through
        gradient, soft bits per image [B], per-stage hard indices [n, N, G])."""
        # Always in float32: nearest-codeword search and EMA statistics are too fine
        # for bfloat16 (the transforms around it may run under autocast).
        with torch.autocast(y.device.type, enabled=False):
            v = self._to_vectors(y.float())
            recon, soft_bits, all_idx = self._quantize_vectors(v, n_stages)
        v_hat = v + (recon - v).detach()
        return self._to_latent(v_hat, y.shape), soft_bits.view(y.shape[0], -1).sum(1), all_idx

    def _quantize_vectors(self, v: torch.Tensor, n_stages: int):
        """ECVQ of vectors [N, G, d], stage by stage: (reconstruction, soft bits [N], indices)."""
        residual = v
        recon = torch.zeros_like(v)
        bits = self.bits_table()
        codebooks = self.codebooks.clone()   # EMA updates below must not touch the graph
        ctx = torch.zeros(v.shape[:2], dtype=torch.long, device=v.device)
        soft_bits = torch.zeros(v.shape[0], device=v.device)
        group_index = torch.arange(self.groups, device=v.device)[None]
        all_idx = []
        for s in range(n_stages):
            dist, b = self._costs(residual, codebooks[s], ctx, bits[s])
            cost_bits = dist / (self.bit_cost[s] * self.search_scale) + b   # everything in bits
            idx = cost_bits.argmin(-1)                           # [N, G]
            if torch.is_grad_enabled():                          # soft rate: training only
                p = torch.softmax(-cost_bits * LN2, dim=-1)
                soft_bits = soft_bits + (p * b).sum(-1).sum(-1)
            q = codebooks[s][group_index, idx]                   # [N, G, d]
            if self.training:
                self._ema_update(s, residual.detach(), idx, ctx)
            recon = recon + q
            residual = residual - q
            all_idx.append(idx)
            ctx = (idx != 0).long()
        return recon, soft_bits, all_idx

    @torch.no_grad()
    def _ema_update(self, s: int, r: torch.Tensor, idx: torch.Tensor, ctx: torch.Tensor):
        d = self.ema_decay
        scale = 100.0 / max(1, r.shape[0])                                   # per 100 positions
        # per (group, code) sums by index, not by a one-hot [N, G, K] product (25x faster)
        flat = (idx + torch.arange(self.groups, device=r.device)[None] * self.codes).reshape(-1)
        count = torch.bincount(flat, minlength=self.groups * self.codes).to(r.dtype).view(
            self.groups, self.codes) * scale                                 # [G, K]
        total = torch.zeros(self.groups * self.codes, self.dim, device=r.device, dtype=r.dtype).index_add_(
            0, flat, r.reshape(-1, self.dim)).view(self.groups, self.codes, self.dim) * scale
        pc = torch.zeros_like(self.prior_counts[s])                          # [G, 2, K]
        pc.index_put_((torch.arange(self.groups, device=r.device)[None].expand_as(idx).reshape(-1),
                       ctx.reshape(-1), idx.reshape(-1)),
                      torch.ones(idx.numel(), device=r.device), accumulate=True)
        pc = pc * scale
        if dist.is_available() and dist.is_initialized():
            # data parallel: every replica applies the statistics of the whole batch
            # (dead-code restarts may still differ; DDP re-broadcasts rank 0's buffers)
            for t in (count, total, pc):
                dist.all_reduce(t)
                t /= dist.get_world_size()
        self.ema_count[s].mul_(d).add_(count, alpha=1 - d)
        self.ema_sum[s].mul_(d).add_(total, alpha=1 - d)
        cb = self.ema_sum[s] / self.ema_count[s].clamp_min(1e-6)[..., None]
        # Restart dead codes from random batch residuals so the codebook stays useful;
        # give them a modest prior so the rate term lets them be tried again.
        dead = self.ema_count[s] < 1e-2
        dead[:, 0] = False
        if dead.any():
            pick = torch.randint(0, r.shape[0], (int(dead.sum()),), device=r.device)
            cb[dead] = r[pick, dead.nonzero()[:, 0]]
            self.ema_count[s][dead] = 0.05
            self.ema_sum[s][dead] = cb[dead] * 0.05
            self.prior_counts[s].masked_fill_(dead[:, None, :].expand(-1, 2, -1), 0.05)
        cb[:, 0] = 0.0
        self.codebooks[s].copy_(cb)
        self.prior_counts[s].mul_(d).add_(pc, alpha=1 - d).clamp_(min=1e-4)

    @torch.no_grad()
    def init_codebooks(self, y: torch.Tensor, iters: int = 10, start: int = 0):
        """k-means initialisation of stages ``start``.. from a batch of latents (code 0 =
        zero). With ``start > 0`` the first stages are kept and the new ones learn the
        residual they leave (growing a trained model by more stages)."""
        residual = self._to_vectors(y.float())
        if start:
            training, self.training = self.training, False
            residual = residual - self._quantize_vectors(residual, start)[0]
            self.training = training
        n = residual.shape[0]
        for s in range(start, self.stages):
            pick = torch.randint(0, n, (self.codes,), device=y.device)
            cb = residual[pick].permute(1, 0, 2).clone()                    # [G, K, d]
            cb[:, 0] = 0
            for _ in range(iters):
                dist = (residual * residual).sum(-1, keepdim=True) - 2 * torch.einsum(
                    "ngd,gkd->ngk", residual, cb) + (cb * cb).sum(-1)[None]
                idx = dist.argmin(-1)
                onehot = torch.nn.functional.one_hot(idx, self.codes).to(residual.dtype)
                cnt = onehot.sum(0)
                tot = torch.einsum("ngk,ngd->gkd", onehot, residual)
                upd = cnt > 0
                cb[upd] = tot[upd] / cnt[upd][:, None]
                cb[:, 0] = 0
            self.codebooks[s].copy_(cb)
            self.ema_count[s].copy_(cnt.clamp_min(1) / n * 100)
            self.ema_sum[s].copy_(cb * self.ema_count[s][..., None])
            self.prior_counts[s].copy_((cnt.clamp_min(1) / n * 100)[:, None, :].expand(-1, 2, -1))
            q = torch.gather(cb[None].expand(n, -1, -1, -1), 2,
                             idx[:, :, None, None].expand(-1, -1, 1, self.dim)).squeeze(2)
            residual = residual - q

    # -- coding ---------------------------------------------------------------------
    @torch.no_grad()
    def quantize(self, y: torch.Tensor, n_stages: int, beam: int | None = None) -> torch.Tensor:
        """Hard ECVQ indices [n_stages, B, G, H, W] (int16: codes < 2**15), by ``search``.

        Positions are independent, so they go through in chunks: memory stays bounded
        for large images and the result is the same as in one piece.
        """
        beam = self.search_beam if beam is None else beam
        b, _, h, w = y.shape
        grid = self._to_grid(y)                                              # [B, H, W, G, d]
        chunk = max(1, (1 << 21) // (self.groups * self.codes * beam))     # 8 MB of scores: cache-sized
        # chunks of whole rows (or of one row, when a row is longer than a chunk), in raster
        # order: the vectors are copied out of the latent one chunk at a time
        cols = min(w, chunk)
        rows = max(1, chunk // w) if cols == w else 1
        parts = [self.search(grid[i, r:r + rows, j:j + cols].reshape(-1, self.groups, self.dim).float(),
                             n_stages, beam).to(torch.int16)
                 for i in range(b) for r in range(0, h, rows) for j in range(0, w, cols)]
        idx = torch.cat(parts, dim=1)                                        # [n, N, G]
        return idx.view(n_stages, b, h, w, self.groups).permute(0, 1, 4, 2, 3)

    @torch.no_grad()
    def search(self, v: torch.Tensor, n_stages: int, beam: int = 1) -> torch.Tensor:
        """Indices [n_stages, N, G] minimising distortion / lambda + bits over all stages.

        Greedy stage-by-stage choice (``beam=1``) commits to a codeword that may leave a
        residual the later, finer stages code badly; a beam keeps the ``beam`` cheapest
        partial paths per vector and picks the cheapest complete one at the last stage
        (docs/TRAINING_LOG.md, Part 3). Partial paths are compared by the greedy cost:
        bits so far + residual distortion / lambda of the stage reached.

        One batched matmul per stage gives every candidate's whole cost: the residual is
        augmented with its context one-hot and its running cost, the codebook with its
        norms and bit costs, so that <aug(r), aug(c)> = cost(r -> r - c).
        """
        n, g, d = v.shape
        k = self.codes
        device = v.device
        bits = self.bits_table()                                             # [S, G, 2, K]
        w = self.distortion_weight                                           # [G, d]
        target = v.permute(1, 0, 2)[:, :, None]                              # [G, N, 1, d]
        recon = torch.zeros(g, n, 1, d, device=device)                       # one path at first
        spent = torch.zeros(g, n, 1, device=device)                          # bits so far
        ctx = torch.zeros(g, n, 1, device=device)
        ones = torch.ones(g, k, 1, device=device)
        codes, parents = [], []
        groups = torch.arange(g, device=device)[:, None, None]
        for s in range(n_stages):
            lam = float(self.bit_cost[s]) * self.search_scale
            cb = self.codebooks[s]                                           # [G, K, d]
            paths = recon.shape[2]
            r = target - recon                                               # [G, N, P, d]
            rw = r * w[:, None, None]
            base = spent + (rw * r).sum(-1) / lam
            aug_r = torch.cat([rw, (1 - ctx)[..., None], ctx[..., None], base[..., None]], -1)
            norm = (cb * cb * w[:, None]).sum(-1) / lam                      # [G, K]
            aug_c = torch.cat([-2 * cb / lam, (norm + bits[s, :, 0])[..., None],
                               (norm + bits[s, :, 1])[..., None], ones], -1)  # [G, K, d + 3]
            cost = torch.bmm(aug_r.view(g, n * paths, d + 3), aug_c.transpose(1, 2))
            cost = cost.view(g, n, paths * k)
            if beam == 1:
                best = cost.argmin(-1, keepdim=True)                         # [G, N, 1]
            else:
                best = cost.topk(beam, -1, largest=False, sorted=False).indices   # [G, N, B]
            parent, code = best // k, best % k
            was_nonzero = ctx.gather(-1, parent).long()
            spent = spent.gather(-1, parent) + bits[s][groups, was_nonzero, code]
            recon = recon.gather(2, parent[..., None].expand(-1, -1, -1, d)) + cb[groups, code]
            ctx = (code != 0).float()
            codes.append(code)
            parents.append(parent)
        final = ((target - recon) * w[:, None, None] * (target - recon)).sum(-1) / lam + spent
        pick = final.argmin(-1, keepdim=True)                                # [G, N, 1]
        out = []
        for code, parent in zip(reversed(codes), reversed(parents)):
            out.append(code.gather(-1, pick)[..., 0])
            pick = parent.gather(-1, pick)
        return torch.stack(out[::-1]).permute(0, 2, 1)                      # [S, N, G]

    @torch.no_grad()
    def dequantize(self, indices: torch.Tensor) -> torch.Tensor:
        """Sum of codewords for indices [n, B, G, H, W] -> latent [B, G*d, H, W]."""
        n, b, g, h, w = indices.shape
        out = torch.zeros(b, g, self.dim, h, w, device=indices.device)
        for s in range(n):
            cb = self.codebooks[s]                                           # [G, K, d]
            gi = torch.arange(g, device=indices.device).view(1, g, 1, 1).expand(b, g, h, w)
            out += cb[gi, indices[s].long()].permute(0, 1, 4, 2, 3)   # one stage at a time in int64
        return out.reshape(b, g * self.dim, h, w)
