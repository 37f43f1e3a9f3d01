# bench/plots_kv.gp: the KV cache plot of make bench (gnuplot -e "dir='build/bench/results'; types='f16 q8 tq4 tq3'"
# bench/plots_kv.gp), from kv.dat written by bench/report.py: decode tok/s and KV cache memory against the context
# length, one line per KV cache type (columns 2i and 2i+1 of kv.dat for the i-th type).
if (!exists("dir")) dir = 'build/bench/results'
if (!exists("types")) types = 'f16 q8 tq4 tq3'
set terminal pngcairo size 1100,450 font ",10" noenhanced
set output 'bench/kv_by_context.png'
set multiplot layout 1,2 title "g4 KV cache types (E2B-shaped, compressed types on the full-attention layers)"
set style data linespoints
set grid
set key top right
set xlabel "context (tokens)"
set yrange [0:*]
set title "decode"
set ylabel "decode tokens/s"
plot for [i=1:words(types)] dir.'/kv.dat' using 1:(column(2*i)) title word(types, i) lw 2 pt 7
set title "KV cache memory"
set ylabel "MiB"
set key top left
plot for [i=1:words(types)] dir.'/kv.dat' using 1:(column(2*i+1)) title word(types, i) lw 2 pt 7
unset multiplot
