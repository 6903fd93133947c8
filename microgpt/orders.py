"""The scalar graph's order of gradient contributions, for the tiers that repeat it.

backward() (microgpt/gpt.py) visits the graph's nodes in the reverse of a depth-first
post-order from the loss, children in order, so a node hears from its consumers in the
reverse of the order in which the search first reached them. A float sum depends on
its order, so every tier that is bit-identical to the scalar graph adds each node's
contributions in this order. Worked out op by op:
- positions come last to first (the losses are summed left to right), and so do a
  batch's documents (so are theirs): every weight gets its contributions from the last
  position back to the first, and every key and value from the last position of its
  document back;
- a linear layer's input hears from the layer's rows last to first: the search reaches
  them through the next layer's first row, in order (`rows_last_first`);
- lm_head's input hears from the vocabulary rows last to first, except the target's,
  which comes last: the search reaches the target's logit first, through the loss; the
  others through the softmax's sum (`lm_head_order`);
- ln1 (the rmsnorm before attention) feeds attn_wq, attn_wk and attn_wv, and the search
  reaches their rows through attention: head by head, and in a head, through the first
  key's logit (the q rows, and at position 0, where that key is the position's own,
  each k row just after its q row), then the position's own key (its k rows), then
  each output column in turn (the v rows). Reversed (`qkv_orders`, indexing the 3C rows
  of attn_wq, attn_wk and attn_wv one above the other): heads last to first; in a head,
  v rows last to first, then at position 0 k and q rows interleaved (k_j before q_j, j
  last to first), at later positions k rows last to first, then q rows last to first.
- a residual stream's vector (a layer's input, and the stream after attention) hears
  from the residual addition first, then from the rmsnorm that reads it.
The sums within one op (a softmax, rmsnorm, attention) are written out where each tier
computes them. Standard library only: the lean tier uses these lists as they are, the
twin (microgpt/twin/model.py) as arrays.
"""


def rows_last_first(width):
    """The order of a linear layer's `width` output rows: last to first."""
    return list(range(width - 1, -1, -1))


def lm_head_order(vocab_size, target):
    """lm_head's rows for a position whose target is `target`: the others last to
    first, then the target's."""
    return [o for o in range(vocab_size - 1, -1, -1) if o != target] + [target]


def qkv_orders(n_embd, n_head):
    """The orders of attn_wq's, attn_wk's and attn_wv's 3C rows (q rows 0..C-1, k rows
    C..2C-1, v rows 2C..3C-1) into ln1's gradient: (a document's first position's,
    every later position's)."""
    C, hd = n_embd, n_embd // n_head
    first, later = [], []
    for h in range(n_head - 1, -1, -1):
        cols = range(h * hd + hd - 1, h * hd - 1, -1)
        v_rows = [2 * C + j for j in cols]
        first += v_rows + [row for j in cols for row in (C + j, j)]     # k_j, q_j
        later += v_rows + [C + j for j in cols] + list(cols)            # k rows, q rows
    return first, later
