// Decode attention over a q8_0 KV cache laid out as KVCache lays it out (chunks of 256 positions,
// [layer][K/V][head][position] rows of 136 bytes for a 128-dim head), timed per CPU second of the
// thread: GB/s of cache the attention consumes, next to a plain read of the same bytes.
//
//   build: for f in Sources/CKernels/*.c; do clang -O2 -ISources/CKernels/include -ISources/CKernels \
//            -c $f -o /tmp/ck/$(basename $f .c).o; done
//          clang -O2 -mavx512f -ISources/CKernels/include -c Scripts/kv_attention_bench.c -o /tmp/ck/_bench.o
//          clang -o /tmp/kv_attention_bench /tmp/ck/*.o -lm -lpthread
//   from memory (a 4K decode token of Ouro-1.4B: 24 layers x 16 heads, 4 loop steps, 1.71 GB):
//          /tmp/kv_attention_bench 4096 2
//   from L2 (one head of 1,024 positions, 3,000 times over): /tmp/kv_attention_bench 1024 3 1 1 3000
//   arguments: positions repeats layers heads inner-repeats; HUGE=1 puts the chunks in 2 MiB pages;
//   NEXTPF=N prefetches N positions of the next chunk before each span (default 64, as decode does).
//   CHUNK=N positions per chunk (default 256; KVCache uses 1,024 for q8_0/last at Ouro-1.4B);
//   PAIR=N runs heads two at a time, N positions of each in turn (four streams in flight);
//   ORDER=chunk runs a layer chunk-major, as one-thread decode does: every head's span of chunk 0,
//   then of chunk 1, ... (head-major, the default, is each head's chunks in turn).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
#include <sys/mman.h>
#include "CKernels.h"
#ifndef PF
#define PF 0
#endif
static double now(void){struct timespec t;clock_gettime(CLOCK_THREAD_CPUTIME_ID,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  int layers=argc>3?atoi(argv[3]):24, heads=argc>4?atoi(argv[4]):16, dim=128, positions=argc>1?atoi(argv[1]):4096, reps=argc>2?atoi(argv[2]):3;
  int CH=getenv("CHUNK")?atoi(getenv("CHUNK")):256, nchunks=(positions+CH-1)/CH; size_t rb=136;
  size_t chunkBytes=(size_t)layers*2*heads*CH*rb;
  unsigned char **chunks=malloc(nchunks*sizeof *chunks);
  float x[128];
  srand(1);
  for(int c=0;c<nchunks;c++){chunks[c]=aligned_alloc(2<<20,(chunkBytes+(2<<20)-1)&~((size_t)(2<<20)-1)); if(getenv("HUGE")) madvise(chunks[c],(chunkBytes+(2<<20)-1)&~((size_t)(2<<20)-1),MADV_HUGEPAGE);
    for(size_t o=0,k=0;o<chunkBytes;o+=rb,k++){ if(c==0&&k<1021){for(int i=0;i<dim;i++)x[i]=(rand()/(float)RAND_MAX-0.5f);ck_kv_store(CK_KV_Q8_0,x,dim,chunks[c]+o);}
      else memcpy(chunks[c]+o,chunks[0]+(k%1021)*rb,rb); } }  // 1,021 random rows repeated: a quick fill
  float q[128],out[128],scratch[64*64+2],mx[1],sm[1];
  for(int i=0;i<dim;i++)q[i]=(rand()/(float)RAND_MAX-0.5f);
  double bytes=(double)layers*heads*positions*rb*2*4*(argc>5?atoi(argv[5]):1); int inner=argc>5?atoi(argv[5]):1;
  static float scratch2[2][64*64+2]; int pair=getenv("PAIR")?atoi(getenv("PAIR")):0;
  int nextpf=getenv("NEXTPF")?atoi(getenv("NEXTPF")):64, chunkmajor=getenv("ORDER")&&!strcmp(getenv("ORDER"),"chunk");
  for(int r=0;r<reps;r++){
    double t0=now();
    if(chunkmajor) for(int step=0;step<4*inner;step++) for(int l=0;l<layers;l++){
      // Chunk-major: every head's state at once, the heads' runs of one chunk in address order
      // (head h's K run ends where head h + 1's begins: one K and one V stream per chunk and layer).
      ck_attn_rows st[64]; static float outs[64][128], mxs[64], sms[64], scr[64][64*64+2];
      for(int h=0;h<heads;h++){ck_attn_rows t={.rows=1,.dim=dim,.q=q,.ldq=dim,.limit0=positions+1,.rows_per_position=1,.scale=0.088f,.max=&mxs[h],.sum=&sms[h],.out=outs[h],.ldo=dim,.scratch=scr[h]}; st[h]=t; ck_attn_begin(&st[h]);}
      for(int c=0;c<nchunks;c++){ int first=c*CH, count=positions-first<CH?positions-first:CH;
        for(int h=0;h<heads;h++){
          ck_kv_span sp={CK_KV_Q8_0, chunks[c]+((size_t)(l*2+0)*heads+h)*CH*rb, chunks[c]+((size_t)(l*2+1)*heads+h)*CH*rb, rb,count,first};
          ck_attend(&sp,&st[h]); } }
      for(int h=0;h<heads;h++) ck_attn_finish(&st[h],outs[h],dim);
      out[0]=outs[0][0];
    }
    else for(int step=0;step<4*inner;step++) for(int l=0;l<layers;l++) for(int h=0;h<heads;h++){
      if(pair){ if(h%2) continue;  // heads h and h+1 in turn, 64 positions at a time: four streams in flight
        ck_attn_rows s2[2]; float mx2[2],sm2[2],out2[2][128];
        for(int i=0;i<2;i++){ck_attn_rows t={.rows=1,.dim=dim,.q=q,.ldq=dim,.limit0=positions+1,.rows_per_position=1,.scale=0.088f,.max=&mx2[i],.sum=&sm2[i],.out=out2[i],.ldo=dim,.scratch=scratch2[i]}; s2[i]=t; ck_attn_begin(&s2[i]);}
        for(int c=0;c<nchunks;c++){ int first=c*CH, count=positions-first<CH?positions-first:CH;
          for(int b=0;b<count;b+=pair){ int n=count-b<pair?count-b:pair;
            for(int i=0;i<2;i++){ ck_kv_span sp={CK_KV_Q8_0, chunks[c]+(((size_t)(l*2+0)*heads+h+i)*CH+b)*rb, chunks[c]+(((size_t)(l*2+1)*heads+h+i)*CH+b)*rb, rb,n,first+b};
              ck_attend(&sp,&s2[i]); } } }
        for(int i=0;i<2;i++) ck_attn_finish(&s2[i],out2[i],dim);
        out[0]=out2[0][0]; continue; }
      ck_attn_rows s={.rows=1,.dim=dim,.q=q,.ldq=dim,.limit0=positions+1,.rows_per_position=1,.scale=0.088f,.max=mx,.sum=sm,.out=out,.ldo=dim,.scratch=scratch};
      ck_attn_begin(&s);
      for(int c=0;c<nchunks;c++){
        int first=c*CH, count=positions-first<CH?positions-first:CH;
        ck_kv_span sp={CK_KV_Q8_0, chunks[c]+((size_t)(l*2+0)*heads+h)*CH*rb, chunks[c]+((size_t)(l*2+1)*heads+h)*CH*rb, rb,count,first};
        if(c+1<nchunks){ck_kv_span nx=sp; nx.k=chunks[c+1]+((size_t)(l*2+0)*heads+h)*CH*rb; nx.v=chunks[c+1]+((size_t)(l*2+1)*heads+h)*CH*rb; ck_kv_prefetch(&nx,nextpf);}
        ck_attend(&sp,&s);
      }
      ck_attn_finish(&s,out,dim);
    }
    double t1=now();
    // plain read of the same bytes, same order
    __m512i acc=_mm512_setzero_si512();
    for(int step=0;step<4*inner;step++) for(int l=0;l<layers;l++) for(int h=0;h<heads;h++) for(int c=0;c<nchunks;c++) for(int kv=0;kv<2;kv++){
      const unsigned char*p=chunks[c]+((size_t)(l*2+kv)*heads+h)*CH*rb; size_t n=(size_t)CH*rb;
      for(size_t o=0;o<n;o+=64){ if(PF) _mm_prefetch((const char*)p+o+PF,_MM_HINT_T0); acc=_mm512_add_epi64(acc,_mm512_loadu_si512(p+o));}}
    double t2=now();
    double t3=now();
    for(int step=0;step<4*inner;step++) for(int c=0;c<nchunks;c++){ const unsigned char*p=chunks[c]; size_t n=chunkBytes;
      for(size_t o=0;o<n;o+=64){ if(PF) _mm_prefetch((const char*)p+o+PF,_MM_HINT_T0); acc=_mm512_add_epi64(acc,_mm512_loadu_si512(p+o));}}
    double t4=now(); printf("contiguous read %.1f GB/s | ", bytes/(t4-t3)/1e9);
    struct timespec cpu; clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&cpu);
    printf("attn %.3f s %.1f GB/s | plain read %.3f s %.1f GB/s | %lld out0 %g\n",t1-t0,bytes/(t1-t0)/1e9,t2-t1,bytes/(t2-t1)/1e9,(long long)_mm512_reduce_add_epi64(acc),out[0]);
  }
}
