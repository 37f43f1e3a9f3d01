#include "kernels/ops.h"

#include <math.h>

void g4_rmsnorm(float *y, const float *x, const float *w, int n, float eps) {
    double ss = 0; /* the sum of squares in double: cheap, and independent of n */
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    if (w)
        for (int i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
    else
        for (int i = 0; i < n; i++) y[i] = x[i] * scale;
}

float g4_gelu(float x) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
    return 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x)));
}

void g4_rope_neox(float *x, int d, int n_rot, int pos, float base, const float *ff) {
    (void)d;
    int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        /* theta computed in double then rounded, like a careful fp32 implementation */
        double theta = (double)pos * pow((double)base, -2.0 * i / n_rot);
        if (ff) theta /= ff[i];
        float c = (float)cos(theta), s = (float)sin(theta);
        float a = x[i], b = x[i + half];
        x[i] = a * c - b * s;
        x[i + half] = b * c + a * s;
    }
}

void g4_softmax(float *x, int n) {
    float m = -INFINITY;
    for (int i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}
